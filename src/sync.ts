/**
 * The engine behind `sync`, `status` and `check`: discover → hash (worker pool) → classify → commit →
 * retire legacy → report. One actor at a time through each step, many actors in flight; a failing actor
 * becomes an error in its report and never stops the others.
 */
import { mkdir } from 'node:fs/promises';
import pLimit from 'p-limit';
import { classify, type LocalFile } from './classify.js';
import { entryDifferences, statisticsDifferences, type Difference } from './differences.js';
import { listActors, selects, type Actor } from './discover.js';
import { InputError, messageOf, type ActorFailure } from './errors.js';
import { acquireLock, type RunLock } from './lock.js';
import { commitFile, removeStaleTemps } from './manifest/commit.js';
import { newManifest, ownedFieldsDiffer, serializeManifest, withTrainingData } from './manifest/merge.js';
import type { TrainingEntry, TrainingStatistics } from './manifest/schema.js';
import { createHashPool, type HashFile, type HashPool, type HashResult } from './pool.js';
import { readActor, type ActorFacts } from './read-actor.js';
import { retireResponseJson, urlsNotHeld } from './retire.js';
import { resolveDataRoot, type DataRoot, type RootOptions } from './root.js';

export interface SyncOptions extends RootOptions {
  /** Actor ids or names (`0`, `0000`, `0000_european_16_male`); default all. */
  actors?: string[];
  /** Compute and report everything, write nothing (no lock, no temp file, no deletion). */
  dryRun?: boolean;
  /** Keep `response.json` files instead of retiring them. */
  keepLegacy?: boolean;
  /** Rehash files whose stat token still matches. */
  verify?: boolean;
  /** Hashing threads; default the machine's available parallelism. */
  workers?: number;
  /** Wait for another run's lock instead of failing at once. */
  wait?: boolean;
  /** Told once when the run starts waiting for another run's lock. */
  onWait?: (message: string) => void;
  /** Aborting stops dispatching new actors; actors in flight finish their commits. */
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Clock for `training_data_updated` (tests). */
  now?: () => Date;
}

/** Receives progress as it happens; `src/progress.ts` draws it. */
export interface ProgressSink {
  start(actors: number): void;
  actorDone(report: ActorReport): void;
  stop(): void;
}

/** What happened to a manifest; with `dryRun`, what would. */
export type ManifestOutcome = 'created' | 'written' | 'unchanged' | 'failed' | 'not-run';
/** What happened to `response.json`; with `dryRun`, what would. */
export type LegacyOutcome = 'retired' | 'kept' | 'none' | 'failed';

export interface ActorReport {
  id: string;
  name: string;
  manifest: ManifestOutcome;
  legacy: LegacyOutcome;
  statistics: TrainingStatistics | null;
  hashedFiles: number;
  hashedBytes: number;
  reusedFiles: number;
  errors: ActorFailure[];
  warnings: ActorFailure[];
  /** What sync changes (or would) in this actor's files: `check` lists these. */
  differences: Difference[];
}

export interface SyncReport {
  dryRun: boolean;
  data: DataRoot;
  actors: ActorReport[];
  /** Problems not tied to one actor (a skipped folder). */
  warnings: ActorFailure[];
  interrupted: boolean;
  durationMs: number;
}

const LOCK_NAME = '.actor-sync.lock';

type EngineOptions = SyncOptions & { dryRun: boolean; lock?: RunLock };

export async function runSync(options: SyncOptions): Promise<SyncReport> {
  const started = performance.now();
  const data = await resolveDataRoot(options);
  const dryRun = options.dryRun ?? false;
  let lock: RunLock | undefined;
  if (!dryRun) {
    await mkdir(data.manifestsDir, { recursive: true });
    lock = await acquireLock(data.manifestsDir, LOCK_NAME, { wait: options.wait ?? false, signal: options.signal, onWait: options.onWait });
  }
  try {
    if (!dryRun) await removeStaleTemps(data.manifestsDir);
    const { actors, skipped } = await listActors(data);
    const selected = options.actors?.length ? actors.filter((actor) => options.actors!.some((s) => selects(actor, s))) : actors;
    const pool = createHashPool(options.workers);
    try {
      const reports = await processAll(selected, data, pool, { ...options, dryRun, lock });
      return {
        dryRun,
        data,
        actors: reports,
        warnings: skipped.map((s) => ({ actor: '', file: s.file, reason: s.reason })),
        interrupted: options.signal?.aborted ?? false,
        durationMs: performance.now() - started,
      };
    } finally {
      await pool.destroy();
    }
  } finally {
    await lock?.release();
  }
}

async function processAll(actors: Actor[], data: DataRoot, pool: HashPool, options: EngineOptions): Promise<ActorReport[]> {
  const byId = new Map<string, Actor[]>();
  for (const actor of actors) byId.set(actor.id, [...(byId.get(actor.id) ?? []), actor]);
  // Two stages with their own bounds: enough actors read and hashed at once to keep every worker fed,
  // and commits apart, so an fsync waiting on the disk never holds a slot the workers need.
  const prepare = pLimit(Math.max(2, (options.workers ?? 2) * 4));
  const commit = pLimit(COMMITS_IN_FLIGHT);
  options.progress?.start(actors.length);
  try {
    return await Promise.all(
      actors.map(async (actor) => {
        const prepared = await prepare(() =>
          options.signal?.aborted ? emptyReport(actor, 'not-run') : prepareActor(actor, byId.get(actor.id) ?? [], data, pool, options),
        );
        const report = 'facts' in prepared ? await commit(() => commitActor(prepared, options)) : prepared;
        options.progress?.actorDone(report);
        return report;
      }),
    );
  } finally {
    options.progress?.stop();
  }
}

const COMMITS_IN_FLIGHT = 16;

function emptyReport(actor: Actor, manifest: ManifestOutcome): ActorReport {
  return {
    id: actor.id,
    name: actor.name,
    manifest,
    legacy: 'none',
    statistics: null,
    hashedFiles: 0,
    hashedBytes: 0,
    reusedFiles: 0,
    errors: [],
    warnings: [],
    differences: [],
  };
}

/** An actor read, hashed and classified, waiting for its commit. */
interface Prepared {
  report: ActorReport;
  facts: ActorFacts;
  entries: TrainingEntry[];
  statistics: TrainingStatistics;
  changed: boolean;
}

function failed(report: ActorReport, file: string, reason: string): ActorReport {
  report.errors.push({ actor: report.name, file, reason });
  report.manifest = 'failed';
  report.legacy = 'failed';
  return report;
}

/** Reads, hashes and classifies one actor; a failure is a report, never a throw. */
async function prepareActor(actor: Actor, sameId: Actor[], data: DataRoot, pool: HashPool, options: EngineOptions): Promise<Prepared | ActorReport> {
  const report = emptyReport(actor, 'failed');
  if (sameId.length > 1) {
    return failed(report, actor.dir, `${sameId.length} actor folders share the id ${actor.id} (${sameId.map((a) => a.name).join(', ')}), so they would share ${actor.manifestPath}; rename one; left unchanged`);
  }

  let facts: ActorFacts;
  try {
    facts = await readActor(actor, data);
  } catch (error) {
    if (error instanceof InputError) return failed(report, error.file, error.reason);
    return failed(report, actor.dir, messageOf(error));
  }
  for (const skipped of facts.skipped) report.warnings.push({ actor: actor.name, ...skipped });

  const previous = new Map(facts.previous.map((entry) => [entry.filename, entry]));
  const files: HashFile[] = facts.images.map((image) => ({ path: image.path, reuse: reusable(previous.get(image.filename)) }));
  const results = await pool.hash({ files, racyFromNs: facts.manifestMtimeNs, verify: options.verify ?? false });

  const local: LocalFile[] = [];
  for (const [i, result] of results.entries()) {
    const image = facts.images[i]!;
    if (result.ok) {
      local.push({ filename: image.filename, localPath: image.localPath, size: result.size, mtimeNs: result.mtimeNs, inode: result.inode, md5: result.md5 });
      if (result.reused) report.reusedFiles += 1;
      else {
        report.hashedFiles += 1;
        report.hashedBytes += result.size;
      }
      if (result.size === 0) report.warnings.push({ actor: actor.name, file: image.path, reason: 'a zero-byte image; recorded as it is' });
    } else if (isGone(result)) {
      report.warnings.push({ actor: actor.name, file: image.path, reason: `${result.reason}` });
    } else {
      return failed(report, image.path, `cannot be read (${result.code}: ${result.reason}); manifest and response.json left unchanged`);
    }
  }

  const { entries, statistics, conflicts } = classify({
    local,
    previous: facts.previous,
    legacyUrls: facts.legacyByFilename,
    promptUrls: facts.promptUrls,
  });
  if (conflicts.length > 0) return failed(report, facts.responsePath, conflicts.map((c) => `${c.filename}: ${c.reason}`).join('; '));
  report.statistics = statistics;

  const changed = facts.manifest === null || ownedFieldsDiffer(facts.manifest, entries, statistics);
  report.differences = differencesOf(actor, facts, entries, statistics, options.keepLegacy ?? false);
  report.manifest = !changed ? 'unchanged' : facts.manifest === null ? 'created' : 'written';
  return { report, facts, entries, statistics, changed };
}

/** Commits one prepared actor's manifest, then retires its response.json. */
async function commitActor({ report, facts, entries, statistics, changed }: Prepared, options: EngineOptions): Promise<ActorReport> {
  const { actor } = facts;
  if (changed && !options.dryRun) {
    // A lock taken over by another run means two writers: stop committing rather than race it.
    if (options.lock?.compromised) return failed(report, actor.manifestPath, `not written: this run lost its lock (${options.lock.compromised.message}); run again`);
    const base = facts.manifest ?? newManifest(actor.id, actor.name);
    const now = (options.now ?? (() => new Date()))().toISOString();
    try {
      await commitFile(actor.manifestPath, serializeManifest(withTrainingData(base, entries, statistics, now)));
    } catch (error) {
      return failed(report, actor.manifestPath, `cannot be written (${messageOf(error)}); left as it was, response.json kept`);
    }
  }

  report.legacy = await settleLegacy(facts, entries, options);
  if (report.legacy === 'failed') {
    report.errors.push({ actor: actor.name, file: facts.responsePath, reason: legacyProblem(facts, entries) });
  }
  return report;
}

/** The recorded hash with its stat token, when the entry has one. */
function reusable(entry: TrainingEntry | undefined): HashFile['reuse'] {
  if (!entry?.md5_hash || entry.size_bytes == null || entry.mtime_ns == null || entry.inode == null) return undefined;
  return { size: entry.size_bytes, mtimeNs: entry.mtime_ns, inode: entry.inode, md5: entry.md5_hash };
}

/** A file that vanished or turned out not to be a file after the listing: the actor goes on without it. */
function isGone(result: Extract<HashResult, { ok: false }>): boolean {
  return result.code === 'ENOENT' || result.code === 'ENOTFILE';
}

async function settleLegacy(facts: ActorFacts, entries: TrainingEntry[], options: EngineOptions): Promise<LegacyOutcome> {
  if (facts.legacyUrls === null) return 'none';
  if (options.keepLegacy) return 'kept';
  if (urlsNotHeld(facts.legacyUrls, entries).length > 0) return 'failed';
  if (options.dryRun) return 'retired';
  try {
    await retireResponseJson(facts.responsePath);
    return 'retired';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'retired';
    return 'failed';
  }
}

function legacyProblem(facts: ActorFacts, entries: TrainingEntry[]): string {
  const missing = urlsNotHeld(facts.legacyUrls ?? [], entries);
  return missing.length > 0
    ? `not retired: the manifest does not hold ${missing.length} of its URLs (${missing[0]}…); kept`
    : 'could not be deleted; kept (the manifest holds all its URLs)';
}

function differencesOf(actor: Actor, facts: ActorFacts, entries: TrainingEntry[], statistics: TrainingStatistics, keepLegacy: boolean): Difference[] {
  const differences: Difference[] = [];
  if (facts.manifest === null) differences.push({ actor: actor.name, file: actor.manifestPath, what: 'no manifest yet (would be created)' });
  differences.push(...entryDifferences(actor.name, facts.previous, entries));
  if (facts.manifest !== null) differences.push(...statisticsDifferences(actor.name, actor.manifestPath, facts.manifest.statistics, statistics));
  if (facts.legacyUrls !== null && !keepLegacy) differences.push({ actor: actor.name, file: facts.responsePath, what: 'legacy file not yet retired' });
  return differences;
}
