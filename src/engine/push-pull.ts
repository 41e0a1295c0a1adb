/**
 * `push` and `pull`: plan (what a sync would leave each manifest holding, nothing written), run the
 * transfers, then apply once: every manifest committed with what is on disk and what each transfer proved.
 * Nothing is written before S3 has been reached: S3 unreachable or no credentials end the run with every file as it was. A
 * transfer that fails is reported for its image and never recorded as synced. Nothing is deleted in S3.
 */
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { AssessTask, RemoteCheck } from '../../workers/assess.js';
import { messageOf, type ActorFailure } from '../errors.js';
import { emptyReport, type ActorReport } from './report.js';
import type { RunLock } from '../lock/lock.js';
import { acquireRunLock } from '../lock/run-lock.js';
import type { TrainingEntry } from '../manifest/schema.js';
import { resolveDataRoot, type DataRoot } from './root.js';
import type { S3Access, S3Options, S3Stats } from '../s3/client.js';
import { S3ObjectError } from '../s3/failures.js';
import type { ConditionalWrites, WriteCondition } from '../s3/transfer.js';
import { actorIdOf, IMAGE_EXTENSION, isImageName, listActors, selectNamedActors } from './discover.js';
import { removeStaleTemps } from '../manifest/commit.js';
import { parseS3Url, type S3Location } from '../shared/s3-url.js';
import { apply as applySync, plan as planSync, type SyncOptions, type SyncReport } from './sync.js';
import { DEFAULT_UPLOAD_URL_TEMPLATE, fillUploadUrlTemplate } from '../s3/upload-url.js';

export interface TransferOptions extends Omit<SyncOptions, 'remote'> {
  s3: S3Options;
  /** push: also re-upload `out_of_sync` images (the local file wins). */
  repair?: boolean;
  /** push: `{actor_name}`, `{actor_id}` and `{filename}` are replaced; the CLI checks it with `uploadUrlTemplateProblem`. */
  uploadUrlTemplate?: string;
  /** push: when the store refuses conditional writes (501), upload without them (`--allow-overwrite`). */
  allowOverwrite?: boolean;
}

/** One planned or finished transfer. */
export interface Transfer {
  actor: string;
  filename: string;
  url: string;
  bytes: number;
  /** Set when the transfer failed (after retries). */
  error?: string;
}

export interface TransferReport extends SyncReport {
  transfers: Transfer[];
}

/** The transfers an actor's entries call for; one with `skip` is reported (a warning naming its URL) instead. */
type Choose = (
  actor: string,
  entries: TrainingEntry[],
) => { entry: TrainingEntry; url: string; bytes: number; skip?: string }[];

/** Uploads `local_only` images (and, with `repair`, `out_of_sync` ones), then records them as synced. */
export async function runPush(options: TransferOptions): Promise<TransferReport> {
  const template = options.uploadUrlTemplate ?? DEFAULT_UPLOAD_URL_TEMPLATE;
  const choose: Choose = (actor, entries) =>
    entries
      .filter((e) => e.local_path && (e.status === 'local_only' || (options.repair && e.status === 'out_of_sync')))
      .map((e) => ({
        entry: e,
        url: e.s3_url || uploadUrl(actor, e.filename, entries, template),
        bytes: e.size_bytes ?? 0,
      }));
  // Shared by the run's uploads: a store without conditional writes is asked once, and warned of once.
  const conditionalWrites: ConditionalWrites = { unsupported: false };
  let endpoint = 'S3';
  const report = await transfer(options, choose, { writesTrainingData: false }, async (s3, location, entry, data) => {
    const { upload } = await import('../s3/transfer.js');
    endpoint = s3.endpoint;
    const condition = writeCondition(entry);
    if (typeof condition === 'string') throw new S3ObjectError(location.url, condition);
    const uploaded = await upload(s3, location, join(data.root, entry.local_path!), entry.md5_hash!, {
      condition,
      allowOverwrite: options.allowOverwrite,
      conditionalWrites,
    });
    return {
      exists: true,
      md5: entry.md5_hash!,
      etag: uploaded.etag,
      crc64nvme: uploaded.crc64nvme,
      checkedAt: new Date().toISOString(),
    };
  });
  if (conditionalWrites.unsupported) {
    const what = options.allowOverwrite
      ? 'uploaded without them (--allow-overwrite)'
      : 'nothing was uploaded over an object; pass --allow-overwrite to upload without them';
    report.warnings.push({
      actor: '',
      file: endpoint,
      reason: `does not support conditional writes (501 NotImplemented to If-None-Match / If-Match); ${what}`,
    });
  }
  return report;
}

/**
 * What push requires at an image's key (SPEC §5): no object for a `local_only` image, the object the last
 * check saw (its ETag) for an `out_of_sync` one; or why it must not be uploaded at all.
 */
function writeCondition(entry: TrainingEntry): WriteCondition | string {
  if (entry.status !== 'out_of_sync') return { absent: true };
  if (entry.s3_etag) return { etag: entry.s3_etag };
  return 'not uploaded: no check recorded the ETag of the object there, so it would be replaced unseen: run `sync --remote` to compare';
}

/** Downloads `s3_only` images, verifying each MD5, writing each atomically; then records them as synced. */
export async function runPull(options: TransferOptions): Promise<TransferReport> {
  const choose: Choose = (_actor, entries) =>
    entries
      .filter((e) => e.status === 's3_only' && e.s3_url)
      .map((e) => ({
        entry: e,
        url: e.s3_url!,
        bytes: 0,
        // Only images are written into training_data: a `response.json` there would be read as the actor's own.
        ...(isImageName(e.filename)
          ? {}
          : { skip: `${JSON.stringify(e.filename)} is not an image name; not downloaded (only images are pulled)` }),
      }));
  return transfer(options, choose, { writesTrainingData: true }, async (s3, location, entry, _data, trainingDir) => {
    const { download } = await import('../s3/transfer.js');
    const got = await download(s3, location, join(trainingDir, entry.filename));
    return {
      exists: true,
      md5: got.md5,
      etag: got.etag,
      ...(got.crc64nvme ? { crc64nvme: got.crc64nvme } : {}),
      checkedAt: new Date().toISOString(),
    };
  });
}

/** Next to the actor's other S3 images when it has any, else where the template says. */
function uploadUrl(actor: string, filename: string, entries: TrainingEntry[], template: string): string {
  const sibling = entries.find((e) => e.s3_url && e.s3_exists !== false)?.s3_url;
  if (sibling) {
    const cut = sibling.split(/[?#]/)[0]!;
    return `${cut.slice(0, cut.lastIndexOf('/') + 1)}${encodeURIComponent(filename)}`;
  }
  return fillUploadUrlTemplate(template, { actorName: actor, actorId: actorIdOf(actor), filename });
}

type Move = (
  s3: S3Access,
  location: S3Location,
  entry: TrainingEntry,
  data: { root: string },
  trainingDir: string,
) => Promise<RemoteCheck>;

type PlannedTransfer = Transfer & { entry: TrainingEntry };

/** What the transfers proved per actor (to apply), or why S3 refused the run. */
interface Moved {
  found: Map<string, Required<Pick<AssessTask, 'remote' | 'assignedUrls'>>>;
  transfers: Transfer[];
  fatal?: Error;
  requests: S3Stats;
}

/** `writesTrainingData`: downloads are committed into the actors' training_data folders (pull). */
async function transfer(
  options: TransferOptions,
  choose: Choose,
  { writesTrainingData }: { writesTrainingData: boolean },
  move: Move,
): Promise<TransferReport> {
  const started = performance.now();
  const data = await resolveDataRoot(options);
  const lock = await lockUnlessDryRun(options, data);
  try {
    // Planned with nothing written: the entries a sync would leave.
    const first = await planSync(options, { entries: 'all' });
    const { planned, skipped } = chooseTransfers(first.actors, choose);
    if (options.dryRun ?? false)
      return withSkipped(
        { ...first, transfers: planned.map(({ actor, filename, url, bytes }) => ({ actor, filename, url, bytes })) },
        skipped,
      );
    if (options.signal?.aborted) return notRun(first, started);
    if (planned.length === 0) {
      const synced = await applySync({ ...options, wait: false }, { lock });
      return withSkipped({ ...synced, transfers: [], durationMs: performance.now() - started }, skipped);
    }
    if (writesTrainingData) await removeStaleImageTemps(first.actors, data, lock);
    const moved = await moveAll(options, planned, data, move);
    // S3 refused the run (no credentials, unreachable) before any transfer succeeded: nothing is written.
    if (moved.fatal && moved.found.size === 0) throw moved.fatal;
    const second = await applyTransfers(options, moved, lock);
    if (moved.fatal) throw moved.fatal;
    return withSkipped(merged(first, second, moved, started, options.signal?.aborted ?? false), skipped);
  } finally {
    await lock?.release();
  }
}

/** The run lock, none for a dry run. */
async function lockUnlessDryRun(options: TransferOptions, data: DataRoot): Promise<RunLock | undefined> {
  // A selector that names no actor folder is a usage error before the lock (and the manifests folder it may create).
  if (options.actors?.length) selectNamedActors((await listActors(data)).actors, options.actors, data.actorsDir);
  if (options.dryRun ?? false) return undefined;
  return acquireRunLock(data, options.shard, {
    wait: options.wait ?? false,
    signal: options.signal,
    onWait: options.onWait,
  });
}

/** Adds each skipped transfer to its actor's warnings. */
function withSkipped<T extends { actors: ActorReport[] }>(report: T, skipped: ActorFailure[]): T {
  for (const problem of skipped) report.actors.find((a) => a.name === problem.actor)?.warnings.push(problem);
  return report;
}

/** Stopped before anything was written: every actor is left for the next run. */
function notRun(first: SyncReport, started: number): TransferReport {
  return {
    ...first,
    dryRun: false,
    actors: first.actors.map((a) => emptyReport(a, 'not-run')),
    transfers: [],
    interrupted: true,
    durationMs: performance.now() - started,
  };
}

/**
 * What a pull killed mid-commit left (an image's temp file), removed under the lock before this one
 * writes; only in folders the planning pass read without a problem (never through a symlink leading out).
 */
async function removeStaleImageTemps(actors: ActorReport[], data: DataRoot, lock: RunLock | undefined): Promise<void> {
  const readable = actors.filter((actor) => actor.errors.length === 0);
  const owns = (target: string) => IMAGE_EXTENSION.test(target);
  await Promise.all(
    readable.map((actor) =>
      removeStaleTemps(join(data.actorsDir, actor.name, 'training_data'), { owns, olderThanMs: lock?.takenMs }),
    ),
  );
}

/** The transfers the plan's entries call for, and those it skips (each a warning of its actor). */
function chooseTransfers(
  actors: ActorReport[],
  choose: Choose,
): { planned: PlannedTransfer[]; skipped: ActorFailure[] } {
  const planned: PlannedTransfer[] = [];
  const skipped: ActorFailure[] = [];
  for (const actor of actors) {
    if (actor.errors.length > 0 || !actor.entries) continue;
    for (const { entry, url, bytes, skip } of choose(actor.name, actor.entries)) {
      if (skip) skipped.push({ actor: actor.name, file: url, reason: skip });
      else planned.push({ actor: actor.name, filename: entry.filename, url, bytes, entry });
    }
  }
  for (const actor of actors) delete actor.entries;
  return { planned, skipped };
}

/**
 * Runs the transfers a few at a time, so an interrupt, or S3 becoming unreachable, stops the ones not yet
 * begun; the ones in flight finish and are recorded.
 */
async function moveAll(
  options: TransferOptions,
  planned: PlannedTransfer[],
  data: DataRoot,
  move: Move,
): Promise<Moved> {
  const { createS3 } = await import('../s3/client.js');
  const s3 = createS3(options.s3);
  const moved: Moved = { found: new Map(), transfers: [], requests: s3.stats };
  const limit = pLimit(s3.concurrency);
  try {
    await Promise.all(
      planned.map((item) =>
        limit(async () => {
          const done: Transfer = { actor: item.actor, filename: item.filename, url: item.url, bytes: item.bytes };
          moved.transfers.push(done);
          if (options.signal?.aborted || moved.fatal)
            return void (done.error = `not started: ${moved.fatal ? 'S3 failed' : 'interrupted'}`);
          try {
            const named = parseS3Url(item.url);
            if (named.filename !== item.filename)
              throw new Error(`the URL names "${named.filename}", not "${item.filename}"`);
            // A "+" or a name in another Unicode form: the key the bucket holds, never a guess.
            const location = await (await import('../s3/held-key.js')).heldLocation(s3, named);
            const fact = await move(s3, location, item.entry, data, join(data.actorsDir, item.actor, 'training_data'));
            const record = moved.found.get(item.actor) ?? { remote: {}, assignedUrls: {} };
            record.remote[item.url] = fact;
            record.assignedUrls[item.filename] = item.url;
            moved.found.set(item.actor, record);
          } catch (error) {
            if ((error as Error).name === 'UsageError') moved.fatal ??= error as Error;
            done.error = messageOf(error);
          }
        }),
      ),
    );
  } finally {
    s3.close();
  }
  return moved;
}

/**
 * Applies every selected actor, each with what its transfers proved. A signal (before or during this step)
 * leaves the actors without a finished transfer for the next run; those with one are still recorded (sync.ts
 * applies an actor with `transfers` after a signal): that work is done already.
 */
async function applyTransfers(
  options: TransferOptions,
  { found }: Moved,
  lock: RunLock | undefined,
): Promise<SyncReport | undefined> {
  const stopped = options.signal?.aborted ?? false;
  if (stopped && found.size === 0) return undefined;
  return applySync(
    { ...options, wait: false, ...(stopped ? { actors: [...found.keys()] } : {}) },
    { lock, transfers: found },
  );
}

/** The plan's actors as applied (those not applied: not run), each failed transfer an error of its actor. */
function merged(
  first: SyncReport,
  second: SyncReport | undefined,
  moved: Moved,
  started: number,
  interrupted: boolean,
): TransferReport {
  const after = new Map(second?.actors.map((a) => [a.name, a]));
  const actors = first.actors.map((a) => after.get(a.name) ?? emptyReport(a, 'not-run'));
  for (const failed of moved.transfers.filter((t) => t.error)) {
    const actor = actors.find((a) => a.name === failed.actor);
    actor?.errors.push({
      actor: failed.actor,
      file: failed.url,
      reason: `${failed.filename}: ${failed.error}; not recorded as synced`,
    });
  }
  return {
    ...(second ?? first),
    dryRun: false,
    actors,
    s3Requests: { ...moved.requests },
    transfers: moved.transfers,
    interrupted,
    durationMs: performance.now() - started,
  };
}
