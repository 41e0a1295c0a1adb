/**
 * The engine behind `sync`, `status` and `check`: discover → assess in the worker pool (read, hash,
 * classify) → commit in this thread (the single writer) → retire legacy → report. Many actors are in
 * flight; a failing actor becomes an error in its report and never stops the others.
 */
import { readFileSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import pLimit from 'p-limit';
import type { Assessment, AssessTask, RemoteCheck } from './assess.js';
import { listActors, refusedActors, selectActors, selectNamedActors, type Actor, type Refusal, type Skipped } from './discover.js';
import { messageOf, UsageError, type ActorFailure } from './errors.js';
import type { RunLock } from './lock.js';
import { acquireRunLock } from './run-lock.js';
import { CommitError, commitFile, fsyncDirectoryShared, fsyncFile, removeStaleTemps } from './manifest/commit.js';
import { sameJson } from './manifest/merge.js';
import { lazyPool } from './lazy-pool.js';
import { md5Hex } from './md5/hex.js';
import type { WorkerPool } from './pool.js';
import { emptyReport, failed, type ActorReport, type LegacyOutcome } from './report.js';
import { retireLegacyFile } from './retire.js';
import { resolveDataRoot, type DataRoot, type RootOptions } from './root.js';
import { shardOf, type Shard } from './shard.js';
import { parseS3Url, type S3Location } from './s3-url.js';
import type { S3Access, S3Options, S3Stats } from './s3/client.js';
import type { EarlyListing } from './s3/list.js';
import { earlyListingFor, MANY_ACTORS, type Listing } from './s3/prefixes.js';
import { cachePath, newerThanManifests } from './cache-path.js';
import { codeIdentity, readCache, remotelySettleable, remotelySettled, settledReport, writeCache, type CacheEntry } from './sync-cache.js';

export type { ActorReport } from './report.js';

export interface SyncOptions extends RootOptions {
  /** Actor ids or names (`0`, `0000`, `0000_european_16_male`); default all. */
  actors?: string[];
  /** Compute and report everything, write nothing (no lock, no temp file, no deletion). */
  dryRun?: boolean;
  /** Keep `response.json` files instead of retiring them. */
  keepLegacy?: boolean;
  /** Rehash files whose stat token still matches. */
  verify?: boolean;
  /** Only the actors of this shard (each shard has its own lock and writes only its own manifests). */
  shard?: Shard;
  /** Worker threads; default the machine's available parallelism. */
  workers?: number;
  /** The caller's pool (the CLI's starts its threads early, or lazily); not destroyed here. */
  pool?: WorkerPool;
  /** Wait for another run's lock instead of failing at once. */
  wait?: boolean;
  /** Told once when the run starts waiting for another run's lock. */
  onWait?: (message: string) => void;
  /** Aborting stops dispatching new actors; actors in flight finish their commits. */
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Clock for `training_data_updated` (tests). */
  now?: () => Date;
  /** Verify against S3 (`--remote`): list what the selected actors' URLs point to, then classify with it. */
  remote?: S3Options;
  /** Keep each actor's new entries in its report (push and pull choose their transfers from them). */
  explain?: boolean;
  /**
   * Attach the entries to the report of each actor that is not entirely synced (`check --require-synced`
   * names its images). The sync cache still settles the actors it finds entirely synced.
   */
  entriesUnlessSynced?: boolean;
  /** Per actor, what this run's own transfers found (push, pull): URLs given and objects written. */
  transfers?: ReadonlyMap<string, Pick<AssessTask, 'remote' | 'assignedUrls'>>;
  /** A lock the caller already holds (push and pull hold it across their steps); not released here. */
  lock?: RunLock;
  /** Finding no actor folder at all is a usage error (`check`: passing on nothing would hide a wrong folder). */
  requireActors?: boolean;
}

/** Receives progress as it happens; `src/progress.ts` draws it. */
export interface ProgressSink {
  start(actors: number): void;
  actorDone(report: ActorReport): void;
  /** Bytes the threads read for hashing, as they read them (before the actor is done). */
  hashing?(bytes: number): void;
  stop(): void;
}

export interface SyncReport {
  dryRun: boolean;
  /** Requests sent to S3 by kind, when the run asked it anything. */
  s3Requests?: S3Stats;
  data: DataRoot;
  actors: ActorReport[];
  /** Problems not tied to one actor (a skipped folder). */
  warnings: ActorFailure[];
  interrupted: boolean;
  durationMs: number;
}

/** Commits in flight: enough to overlap fsyncs, few enough to bound the manifests held in memory. */
const COMMITS_IN_FLIGHT = 16;

/** Actors settled from the cache between two turns of the event loop (each takes ≈ 0.25 ms). */
const YIELD_EVERY = 64;

/** `confirm`: HEADs URLs whose listed ETag an assessment could not take for an MD5 (RemoteCheck.fromListing). */
type EngineOptions = SyncOptions & { dryRun: boolean; lock?: RunLock; startedAt: string; cache?: RunCache; confirm?: Confirm; settledRemotely?: ReadonlyMap<string, ActorReport> };

type Confirm = (urls: string[]) => Promise<Record<string, RemoteCheck>>;

/** The sync cache as a run uses it: the entries that may settle actors now, and those it will leave. */
interface RunCache {
  path: string;
  /** This build (codeIdentity): written into the cache, and a cache of another build is not read. */
  code: string;
  /** None with --verify, remote findings or push/pull transfers: those look at every actor afresh (and still record what they find). */
  usable: ReadonlyMap<string, CacheEntry>;
  /** Written after every manifest's last change (at the run's start). */
  freshAtStart: boolean;
  /** Usable entries, and the cache fresh: most actors will likely be settled. */
  likelySettles: boolean;
  read: ReadonlyMap<string, CacheEntry>;
  next: Map<string, CacheEntry>;
}

export async function runSync(options: SyncOptions): Promise<SyncReport> {
  const startedAt = (options.now ?? (() => new Date()))().toISOString();
  const data = await resolveDataRoot(options);
  const dryRun = options.dryRun ?? false;
  const pool = options.pool ?? lazyPool(options.workers, async () => (await import('./pool.js')).createPool(options.workers));
  // Read before the lock is taken (an atomic file: the old one or the new, and every entry checks itself):
  // when it is unlikely to settle actors, the threads start now and load while this one takes the lock.
  // A dry run reads it too (an actor it settles is one a sync would leave as it is) but never writes it.
  let cache = await openCache(data, options);
  if (!cache?.likelySettles) pool.start();
  // Listing reads only folder names, so it runs while the lock is taken (after a wait, the folders are listed again).
  let listing = listActors(data);
  listing.catch(() => undefined); // a lock that cannot be taken ends the run before the listing is awaited
  try {
    let lock = options.lock;
    // A selector that names no actor folder is a usage error before anything is written, the lock (and the
    // manifests folder it may create) included. Checked again below on the listing the run goes on with.
    if (options.actors?.length && !options.transfers) selectNamedActors((await listing).actors, options.actors, data.actorsDir);
    if (options.requireActors) requireSomeActor(await listing, data);
    if (!dryRun && !lock) {
      lock = await acquireRunLock(data, options.shard, { wait: options.wait ?? false, signal: options.signal, onWait: options.onWait });
      if (options.wait) listing = listActors(data);
    }
    // A root never synced has its manifests folder (and so a cache path) only once the lock has made it; a
    // run that waited for the lock reads what the run before it left.
    if (!dryRun && (!cache || options.wait)) cache = await openCache(data, options);
    const started = performance.now(); // the run's duration leaves out any wait for the lock
    let remote: Awaited<ReturnType<typeof checkRemote>> | undefined;
    try {
      const { actors, skipped } = await listing;
      const warnings: ActorFailure[] = skipped.map((s) => ({ actor: '', file: s.file, reason: s.reason }));
      const { shard } = options;
      // push and pull's second pass names the actors their transfers touched: one renamed since must not stop
      // the others' transfers being recorded.
      const named = options.transfers ? selectActors(actors, options.actors) : selectNamedActors(actors, options.actors, data.actorsDir);
      const selected = named.filter((actor) => !shard || shardOf(actor.id, shard.count) === shard.index);
      if (!dryRun) {
        // Another shard's temp file may be a commit in flight, not a leftover: clean only this shard's.
        const ours = new Set(selected.map((actor) => `${actor.id}_manifest.json`));
        const owns = options.shard ? (target: string) => ours.has(target) : undefined;
        await removeStaleTemps(data.manifestsDir, { owns, olderThanMs: lock?.takenMs });
      }
      // A shard's actors sit among the others' in S3: its listings read about `spread` keys for each of its own.
      const spread = named.length / Math.max(1, selected.length);
      remote = options.remote ? await checkRemote(selected, data, pool, options.remote, spread, cache?.read) : undefined;
      if (remote) warnings.push(...remote.warnings);
      const transfers = remote?.byActor ?? options.transfers;
      const confirm = remote?.confirm;
      if (cache) {
        // Entries of actor folders that are gone go; those of actors this run does not select stay.
        const names = new Set(actors.map((actor) => actor.name));
        for (const name of cache.next.keys()) if (!names.has(name)) cache.next.delete(name);
      }
      // Judged over every actor folder, not only those selected: `--actor 0005_a` must not write the manifest
      // 0005_b shares, nor `--actor 1` retire the response.json of the folder 0001's training_data links to.
      const refused = refusedActors(actors, data, { path: 'none of them is synced, left unchanged', id: 'left unchanged' });
      const reports = await processAll(selected, refused, data, pool, { ...options, dryRun, lock, startedAt, transfers, cache, confirm, settledRemotely: remote?.settled });
      // Written when its entries changed, and also when a manifest changed since it was (before this run: a
      // chmod; or by it: a commit of an actor it keeps no entry for), so the next run's guess at the entry
      // sees it fresh. Not by a run that lost its lock: the run that took over writes its own.
      const committed = reports.some((report) => report.manifest === 'written' || report.manifest === 'created');
      if (cache && !dryRun && !lock?.compromised && (!sameCache(cache.read, cache.next) || !cache.freshAtStart || committed)) {
        const { path, code } = cache;
        await writeCache(path, code, cache.next, lock?.takenMs).catch((error: unknown) => {
          warnings.push({ actor: '', file: path, reason: `could not be written (${messageOf(error)}); the next run assesses every actor in full` });
        });
      }
      return {
        dryRun,
        s3Requests: remote && { ...remote.requests },
        data,
        actors: reports,
        warnings,
        interrupted: options.signal?.aborted ?? false,
        durationMs: performance.now() - started,
      };
    } finally {
      // Also when anything between the remote check and the end threw: the S3 client's sockets would keep the process.
      remote?.close();
      if (lock !== options.lock) await lock?.release();
    }
  } finally {
    if (!options.pool) await pool.destroy();
  }
}

/** The run's cache (sync-cache.ts), keyed by the manifests folder's real path; none while that folder is missing. */
async function openCache(data: DataRoot, options: SyncOptions): Promise<RunCache | undefined> {
  const real = await realpath(data.manifestsDir).catch(() => undefined);
  if (real === undefined) return undefined;
  const code = codeIdentity();
  if (code === undefined) return undefined;
  const path = cachePath(real, options.shard);
  const read = readCache(path, code);
  const lookAfresh = options.verify || options.remote || options.transfers;
  const usable = lookAfresh ? new Map<string, CacheEntry>() : read;
  const freshAtStart = newerThanManifests(path, real);
  // --remote settles only entries that know what S3 held (checkRemote), once the listing agrees.
  const settling = options.remote && !options.verify && !options.transfers ? [...read.values()].some((entry) => entry.remote) : usable.size > 0;
  return { path, code, usable, freshAtStart, likelySettles: settling && freshAtStart, read, next: new Map(read) };
}

/** Equal entries, every field (a damaged field under a matching fingerprint is rewritten, not kept forever). */
function sameCache(a: ReadonlyMap<string, CacheEntry>, b: ReadonlyMap<string, CacheEntry>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, entry] of a) if (!sameJson(entry, b.get(name))) return false;
  return true;
}

/** @throws {UsageError} when the actors folder holds no actor folder (the skipped ones said). */
function requireSomeActor({ actors, skipped }: { actors: Actor[]; skipped: Skipped[] }, data: DataRoot): void {
  if (actors.length > 0) return;
  const named = skipped.slice(0, 3).map((s) => `${s.file}: ${s.reason}`);
  if (skipped.length > 3) named.push(`and ${skipped.length - 3} more`);
  const why = named.length > 0 ? ` (skipped: ${named.join('; ')})` : '';
  throw new UsageError(`no actor folder found in ${data.actorsDir}${why}; check --root and --actors-dir`);
}

async function processAll(actors: Actor[], refused: ReadonlyMap<string, Refusal>, data: DataRoot, pool: WorkerPool, options: EngineOptions): Promise<ActorReport[]> {
  const reports: ActorReport[] = new Array(actors.length);
  // Two stages with their own bounds: a few runners per worker keep every worker busy assessing, and
  // commits run apart (at most COMMITS_IN_FLIGHT), so an fsync waiting on the disk never holds a runner.
  // Nothing is queued per actor up front, so memory does not grow with the number of actors.
  const commits = new Set<Promise<void>>();
  let next = 0;
  let settledInARow = 0;
  const assessOne = (actor: Actor): Promise<Assessment | ActorReport> => {
    // Before the cache: an actor settled alone may have come to share its folder or manifest since. It is
    // not at rest, so its entry goes too.
    const refusal = refused.get(actor.name);
    if (refusal) {
      options.cache?.next.delete(actor.name);
      return Promise.resolve(failed(emptyReport(actor, 'failed'), refusal.file, refusal.reason));
    }
    const explain = options.dryRun || (options.explain ?? false) || (options.entriesUnlessSynced ?? false);
    // Settled by the cache: nothing its last assessment read has changed (no thread, no parsing). A dry run's
    // differences of a settled actor are none; a run that must show the entries assesses every actor.
    let settled = options.explain ? undefined : (options.settledRemotely?.get(actor.name) ?? settledReport(actor, data, options.cache?.usable.get(actor.name)));
    if (settled && options.entriesUnlessSynced && settled.statistics?.training_synced_count !== settled.statistics?.training_images_count) settled = undefined;
    // Settling is synchronous: now and then, let signals, progress and the lock's refresh timer run.
    if (settled) return ++settledInARow % YIELD_EVERY === 0 ? new Promise((resolve) => setImmediate(resolve, settled)) : Promise.resolve(settled);
    settledInARow = 0;
    const task: AssessTask = { actor, data, verify: options.verify ?? false, keepLegacy: options.keepLegacy ?? false, now: options.startedAt, explain, differences: options.dryRun, settle: options.cache !== undefined && !options.dryRun };
    return assessConfirmed({ ...task, ...options.transfers?.get(actor.name) }).catch((error: unknown) =>
      // A worker that died (out of memory, a crash in native code), or S3 lost while confirming (the listing
      // reached it), fails its actor, not the run: commits of others may be in flight.
      failed(emptyReport(actor, 'failed'), actor.dir, `could not be processed (${messageOf(error)}); left unchanged`),
    );
  };
  // An actor whose listed ETags do not settle its images is assessed again, with what a HEAD of each says.
  const assessConfirmed = async (task: AssessTask): Promise<Assessment> => {
    const first = await pool.assess(task);
    if (!first.confirm) return first;
    // Without a HEAD to send, an assessment that waits on one would pass for a blank report: fail the actor.
    if (!options.confirm) throw new Error(`${first.confirm.length} of its images need a HEAD of their object to be confirmed, and this run checks no remote`);
    return pool.assess({ ...task, remote: { ...task.remote, ...(await options.confirm(first.confirm)) } });
  };
  const done = (i: number, report: ActorReport) => {
    reports[i] = report;
    options.progress?.actorDone(report);
  };
  const runner = async () => {
    while (next < actors.length) {
      const i = next++;
      const actor = actors[i]!;
      // After a signal, only an actor whose transfers finished (push, pull) is still recorded: that work is done.
      if (options.signal?.aborted && !options.transfers?.has(actor.name)) {
        done(i, emptyReport(actor, 'not-run'));
        continue;
      }
      const assessed = await assessOne(actor);
      if (!('report' in assessed)) {
        done(i, assessed);
        continue;
      }
      while (commits.size >= COMMITS_IN_FLIGHT) await Promise.race(commits);
      const commit: Promise<void> = commitActor(assessed, data, options).then((report) => {
        commits.delete(commit);
        if (options.cache) recordSettled(options.cache, assessed, report);
        done(i, report);
      });
      commits.add(commit);
    }
  };
  options.progress?.start(actors.length);
  const { progress } = options;
  const stopHashing = progress?.hashing ? pool.onHashed?.((bytes) => progress.hashing!(bytes)) : undefined;
  try {
    await Promise.all(Array.from({ length: Math.min(actors.length, pool.threads * 4) }, runner));
    await Promise.all(commits);
    return reports;
  } finally {
    stopHashing?.();
    options.progress?.stop();
  }
}

/**
 * `--remote`: collects the URLs the actors' files name (in the workers), lists what S3 holds there (a few
 * LIST requests for many actors), and hands each actor its own findings; `settled`: the actors the `cached`
 * entries settle (nothing local changed, and S3 holds what the entry recorded), whose URLs came from them.
 * With many actors, the listing the first URL suggests (the folder its actor's folder sits in) starts at once and runs while the workers
 * collect the rest. Returns the findings per actor, and `confirm`: HEADs of the URLs an assessment asks
 * about (each URL once), with the run's client kept open for them: `close` it when every actor is assessed.
 * `requests` counts as they are sent.
 */
async function checkRemote(
  actors: Actor[],
  data: DataRoot,
  pool: WorkerPool,
  s3Options: S3Options,
  spread: number,
  cached: ReadonlyMap<string, CacheEntry> = new Map(),
): Promise<{ byActor: Map<string, Pick<AssessTask, 'remote'>>; settled: Map<string, ActorReport>; requests: S3Stats; warnings: ActorFailure[]; confirm: Confirm; close: () => void }> {
  // The S3 modules load while the workers collect the URLs.
  const modules = Promise.all([import('./s3/client.js'), import('./s3/verify.js'), import('./s3/list.js')]);
  let ok = false;
  const limit = pLimit(pool.threads * 4);
  let stopped = false;
  // Only many actors are listed by shared prefix: with a few, there is nothing to guess.
  let guessed: ((guess: Listing | undefined) => void) | undefined;
  const firstGuess = actors.length > MANY_ACTORS ? new Promise<Listing | undefined>((resolve) => (guessed = resolve)) : undefined;
  // An actor at rest since a run that recorded what S3 held: its URLs come from the cache, not its files.
  const settleable = actors.map((actor) => remotelySettleable(actor, data, cached.get(actor.name)));
  const urls = Promise.all(
    actors.map((actor, i) =>
      limit(async () => {
        if (stopped) return [];
        const found = settleable[i] ?? (await pool.urls({ actor, data }));
        for (const url of guessed ? found : []) {
          const location = tryParseS3Url(url);
          const guess = location && earlyListingFor(location, actor.name);
          if (guess) {
            guessed?.(guess);
            guessed = undefined;
            break;
          }
        }
        return found;
      }),
    ),
  ).finally(() => guessed?.(undefined));
  let s3: S3Access | undefined;
  let early: EarlyListing | undefined;
  try {
    const [{ createS3 }, { verifyUrls, confirmUrls }, { startListing }] = await modules;
    s3 = createS3(s3Options);
    const guess = await firstGuess;
    if (guess) early = startListing(s3, guess);
    const byUrl = await urls;
    const locations = new Map<string, S3Location>();
    for (const url of byUrl.flat()) {
      if (locations.has(url)) continue;
      // An unusable URL fails its actor in the assessment, with the file that holds it.
      const location = tryParseS3Url(url);
      if (location) locations.set(url, location);
    }
    const warnings: ActorFailure[] = [];
    const onWarning = (file: string, reason: string) => void warnings.push({ actor: '', file, reason });
    const facts = await verifyUrls(s3, [...locations.values()], { actorFolders: actors.length, spread, early, onWarning, deferHeads: true });
    const byActor = new Map<string, Pick<AssessTask, 'remote'>>();
    const settled = new Map<string, ActorReport>();
    actors.forEach((actor, i) => {
      // Its findings are kept too: a run that must show entries (check --require-synced) assesses it anyway.
      const report = settleable[i] && remotelySettled(actor, cached.get(actor.name)!, facts);
      if (report) settled.set(actor.name, report);
      const remote: Record<string, RemoteCheck> = {};
      for (const url of byUrl[i]!) {
        const fact = facts.get(url);
        if (fact) remote[url] = fact;
      }
      byActor.set(actor.name, { remote });
    });
    const client = s3;
    const confirmed = new Map<string, Promise<RemoteCheck>>();
    const confirm: Confirm = async (asked) => {
      const fresh = asked.filter((url) => !confirmed.has(url) && locations.has(url));
      const heads = confirmUrls(client, fresh.map((url) => locations.get(url)!), facts);
      for (const url of fresh) confirmed.set(url, heads.then((found) => found.get(url)!));
      return Object.fromEntries(await Promise.all(asked.filter((url) => confirmed.has(url)).map(async (url) => [url, await confirmed.get(url)!] as const)));
    };
    ok = true;
    return { byActor, settled, requests: client.stats, warnings, confirm, close: () => client.close() };
  } finally {
    // After a failure above: the URL tasks still queued return at once, and nothing is left in flight.
    stopped = true;
    await urls.catch(() => undefined);
    await early?.stop();
    if (!ok) s3?.close();
  }
}

function tryParseS3Url(url: string): S3Location | undefined {
  try {
    return parseS3Url(url);
  } catch {
    return undefined;
  }
}

/**
 * Keeps the actor's cache entry when it came to rest: committed (or unchanged) and its response.json, if it
 * had one, retired. Any other outcome drops it, so the next run assesses the actor in full.
 */
function recordSettled(cache: RunCache, { settled, legacy }: Assessment, report: ActorReport): void {
  const atRest = settled && report.errors.length === 0 && report.warnings.length === 0 && (legacy === undefined || report.legacy === 'retired');
  if (atRest) cache.next.set(report.name, settled);
  else cache.next.delete(report.name);
}

/** Commits one assessed actor's manifest, then retires its response.json. */
async function commitActor({ report, commit, legacy, entries }: Assessment, data: DataRoot, options: EngineOptions): Promise<ActorReport> {
  if (options.explain || options.entriesUnlessSynced) report.entries = entries;
  if (report.errors.length > 0) return report;
  if (commit && !options.dryRun) {
    // Each failure leaves the manifest as it was; a response.json the actor has not got is not counted.
    const fail = (reason: string): ActorReport => {
      failed(report, commit.path, `${reason}${legacy ? ' (response.json kept)' : ''}`);
      if (!legacy) report.legacy = 'none';
      return report;
    };
    if (commit.readOnly) return fail('is read-only, so sync will not replace it; left unchanged (make it writable to let sync update it)');
    // A lock taken over by another run means two writers: stop committing rather than race it.
    if (options.lock?.compromised) return fail(`not written: this run lost its lock (${options.lock.compromised.message}); run again`);
    // Another program may have written the manifest since the worker read it (the lock binds only this
    // tool): its changes are not overwritten, and the actor is assessed afresh by the next run.
    const now = contentMd5(commit.path);
    if (now !== commit.basis) {
      const what = commit.basis === null ? 'appeared' : now === null ? 'was deleted' : 'changed';
      return fail(`${what} while this run assessed the actor (another program?); not written; run again`);
    }
    try {
      await commitFile(commit.path, commit.text);
    } catch (error) {
      // The failure names the manifest already: the reason does not repeat its path.
      const why = error instanceof CommitError ? error.reason : `could not be written (${messageOf(error)}); left unchanged`;
      return fail(`cannot be written: ${why.replace(/^could not be written /, '')}`);
    }
  }
  if (legacy) {
    // With nothing written now, the manifest holding the URLs came from an earlier run, whose folder fsync
    // may have failed, or from another program that never synced it: make it durable, file and folder,
    // before the legacy file goes.
    if (!commit && !options.dryRun && !options.keepLegacy && legacy.urlsNotHeld.length === 0) {
      const durable = await Promise.all([fsyncFile(legacy.manifest.path), fsyncDirectoryShared(data.manifestsDir)]).then(() => true, () => false);
      if (!durable) {
        report.legacy = 'failed';
        report.errors.push({ actor: report.name, file: legacy.path, reason: 'not retired: the manifest could not be synced to disk; kept' });
        return report;
      }
    }
    const settled = await settleLegacy(legacy, options);
    report.legacy = settled.outcome;
    if (settled.outcome === 'failed') report.errors.push({ actor: report.name, file: legacy.path, reason: settled.reason });
  }
  return report;
}

/** The MD5 of a file's bytes now; null when there is none. A file that cannot be read has no MD5 anything matches. */
function contentMd5(path: string): string | null {
  try {
    // Read in this thread: a manifest is small, and a thread-pool round trip per commit was a few per cent
    // of a cold run.
    return md5Hex(readFileSync(path));
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : `unreadable: ${(error as NodeJS.ErrnoException).code}`;
  }
}

async function settleLegacy(legacy: NonNullable<Assessment['legacy']>, options: EngineOptions): Promise<{ outcome: Exclude<LegacyOutcome, 'failed'> } | { outcome: 'failed'; reason: string }> {
  if (options.keepLegacy) return { outcome: 'kept' };
  if (legacy.urlsNotHeld.length > 0) {
    return { outcome: 'failed', reason: `not retired: the manifest does not hold ${legacy.urlsNotHeld.length} of its URLs (${legacy.urlsNotHeld[0]}…); kept` };
  }
  if (options.dryRun) return { outcome: 'retired' };
  // The URLs are held by the manifest this run read or wrote: not by one another program wrote since.
  if (contentMd5(legacy.manifest.path) !== legacy.manifest.md5) {
    return { outcome: 'failed', reason: `not retired: ${legacy.manifest.path} changed while this run worked (another program?); kept, run again` };
  }
  try {
    // The one left aside by a stopped run first: retiring response.json moves it to that name.
    for (const file of legacy.files) {
      if ((await retireLegacyFile(file)) === 'changed') {
        return { outcome: 'failed', reason: `not retired: ${file.path} changed while this run worked (it may name new URLs); kept, run again` };
      }
    }
    return { outcome: 'retired' };
  } catch (error) {
    return { outcome: 'failed', reason: `could not be deleted (${messageOf(error)}); kept (the manifest holds all its URLs)` };
  }
}
