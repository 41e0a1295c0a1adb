/**
 * The engine behind every command: discover → plan each actor (refused, settled by the cache, or assessed in
 * the worker pool: read, hash, classify) → apply it in this thread (the single writer: commit, retire legacy)
 * → report. A run's Mode says whether it applies: `sync` plans then applies each actor as it is planned;
 * status, check and `--dry-run` only plan; push and pull plan, transfer, then apply once. Many actors are in
 * flight; a failing actor becomes an error in its report and never stops the others.
 */
import { apply as applyActor, type ApplyContext } from './apply.js';
import { listActors, refusedActors, selectActors, selectNamedActors, type Actor, type Skipped } from './discover.js';
import { UsageError, type ActorFailure } from '../errors.js';
import type { RunLock } from '../lock/lock.js';
import { acquireRunLock } from '../lock/run-lock.js';
import { removeStaleTemps } from '../manifest/commit.js';
import { lazyPool } from './lazy-pool.js';
import { planner, type KeepEntries, type Mode, type Planned, type Transfers } from './plan.js';
import type { WorkerPool } from './pool.js';
import { emptyReport, type ActorReport } from './report.js';
import { resolveDataRoot, type DataRoot, type RootOptions } from './root.js';
import { openCache, recordSettled, saveCache, type RunCache } from '../cache/run-cache.js';
import { shardOf, type Shard } from './shard.js';
import type { S3Options, S3Stats } from '../s3/client.js';
import { checkRemote } from './remote.js';

export type { ActorReport } from './report.js';
export type { KeepEntries, Mode, Transfers } from './plan.js';

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
}

/** The options of plan() and apply(): whether a run writes is their choice, not a flag. */
export type RunOptions = Omit<SyncOptions, 'dryRun'>;

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

/** What plan() reports beyond the default. */
export interface PlanView {
  /** Which reports keep their actor's entries. */
  entries?: KeepEntries;
  /** Finding no actor folder at all is a usage error (`check`: passing on nothing would hide a wrong folder). */
  requireActors?: boolean;
}

/** What apply() is handed by push and pull. */
export interface ApplyWith {
  /** A lock the caller already holds (across its steps); not released here. */
  lock?: RunLock;
  /** What the caller's transfers found: those actors are recorded even after a signal. */
  transfers?: Transfers;
}

/** `sync`: plans, then applies, each actor; `sync --dry-run` only plans. */
export async function runSync(options: SyncOptions): Promise<SyncReport> {
  const { dryRun, ...rest } = options;
  return dryRun ? plan(rest) : apply(rest);
}

/** What a sync would change, written nowhere (no lock, no temp file, no deletion): status, check, `--dry-run`. */
export async function plan(options: RunOptions, view: PlanView = {}): Promise<SyncReport> {
  return run(options, { kind: 'plan', entries: view.entries }, { requireActors: view.requireActors });
}

/** Plans each actor, then commits it: manifest, retirement, cache. Takes the run's lock unless handed one. */
export async function apply(options: RunOptions, given: ApplyWith = {}): Promise<SyncReport> {
  return run(options, { kind: 'apply', transfers: given.transfers }, { lock: given.lock });
}

/** Commits in flight: enough to overlap fsyncs, few enough to bound the manifests held in memory. */
const COMMITS_IN_FLIGHT = 16;

/** What a run is handed beside its mode. */
interface Given {
  lock?: RunLock;
  requireActors?: boolean;
}

/** The parts of a run once its lock (if it writes) is held. */
interface Run {
  options: RunOptions;
  mode: Mode;
  data: DataRoot;
  pool: WorkerPool;
  lock?: RunLock;
  cache?: RunCache;
  startedAt: string;
}

async function run(options: RunOptions, mode: Mode, given: Given): Promise<SyncReport> {
  const startedAt = (options.now ?? (() => new Date()))().toISOString();
  const data = await resolveDataRoot(options);
  const writes = mode.kind === 'apply';
  const transfers = mode.kind === 'apply' ? mode.transfers : undefined;
  const lookAfresh = Boolean(options.verify || options.remote || transfers);
  const remoteOnly = Boolean(options.remote && !options.verify && !transfers);
  const pool =
    options.pool ?? lazyPool(options.workers, async () => (await import('./pool.js')).createPool(options.workers));
  // Read before the lock is taken (an atomic file: the old one or the new, and every entry checks itself):
  // when it is unlikely to settle actors, the threads start now and load while this one takes the lock.
  // A dry run reads it too (an actor it settles is one a sync would leave as it is) but never writes it.
  let cache = await openCache(data, options.shard, lookAfresh, remoteOnly);
  if (!cache?.likelySettles) pool.start();
  // Listing reads only folder names, so it runs while the lock is taken (after a wait, the folders are listed again).
  let listing = listActors(data);
  listing.catch(() => undefined); // a lock that cannot be taken ends the run before the listing is awaited
  try {
    let lock = given.lock;
    // A selector that names no actor folder is a usage error before anything is written, the lock (and the
    // manifests folder it may create) included. Checked again on the listing the run goes on with.
    if (options.actors?.length && !transfers) selectNamedActors((await listing).actors, options.actors, data.actorsDir);
    if (given.requireActors) requireSomeActor(await listing, data);
    if (writes && !lock) {
      lock = await acquireRunLock(data, options.shard, {
        wait: options.wait ?? false,
        signal: options.signal,
        onWait: options.onWait,
      });
      if (options.wait) listing = listActors(data);
    }
    // A root never synced has its manifests folder (and so a cache path) only once the lock has made it; a
    // run that waited for the lock reads what the run before it left.
    if (writes && (!cache || options.wait)) cache = await openCache(data, options.shard, lookAfresh, remoteOnly);
    try {
      return await runListed({ options, mode, data, pool, lock, cache, startedAt }, await listing);
    } finally {
      if (lock !== given.lock) await lock?.release();
    }
  } finally {
    if (!options.pool) await pool.destroy();
  }
}

/** The run over the listed actor folders: the selected ones planned, and applied when the mode says so. */
async function runListed(run: Run, { actors, skipped }: { actors: Actor[]; skipped: Skipped[] }): Promise<SyncReport> {
  const { options, mode, data, pool, lock, cache } = run;
  const started = performance.now(); // the run's duration leaves out any wait for the lock
  const writes = mode.kind === 'apply';
  const transfers = mode.kind === 'apply' ? mode.transfers : undefined;
  let remote: Awaited<ReturnType<typeof checkRemote>> | undefined;
  try {
    const warnings: ActorFailure[] = skipped.map((s) => ({ actor: '', file: s.file, reason: s.reason }));
    const { selected, others } = selectedActors(run, actors);
    if (writes) await removeOwnStaleTemps(run, selected);
    const byListing = cache?.byListing;
    remote = options.remote ? await checkRemote(selected, data, pool, options.remote, others, byListing) : undefined;
    if (remote) warnings.push(...remote.warnings);
    if (cache) {
      // Entries of actor folders that are gone go; those of actors this run does not select stay.
      const names = new Set(actors.map((actor) => actor.name));
      for (const name of cache.next.keys()) if (!names.has(name)) cache.next.delete(name);
    }
    // Judged over every actor folder, not only those selected: `--actor 0005_a` must not write the manifest
    // 0005_b shares, nor `--actor 1` retire the response.json of the folder 0001's training_data links to.
    const refused = refusedActors(actors, data, {
      path: 'none of them is synced, left unchanged',
      id: 'left unchanged',
    });
    const found = remote?.byActor ?? transfers;
    const planOne = planner({
      data,
      pool,
      mode,
      verify: options.verify ?? false,
      keepLegacy: options.keepLegacy ?? false,
      startedAt: run.startedAt,
      refused,
      found,
      confirm: remote?.confirm,
      cache,
      settledRemotely: remote?.settled,
    });
    const reports = await processAll(selected, planOne, run);
    if (cache && writes) await saveCache(cache, reports, lock, warnings);
    const interrupted = options.signal?.aborted ?? false;
    return {
      dryRun: !writes,
      s3Requests: remote && { ...remote.requests },
      data,
      actors: reports,
      warnings,
      interrupted,
      durationMs: performance.now() - started,
    };
  } finally {
    // Also when anything between the remote check and the end threw: the S3 client's sockets would keep the process.
    remote?.close();
  }
}

/**
 * The actors the run selects (by name, then by shard). push and pull's apply names the actors their transfers
 * touched: one renamed since must not stop the others' transfers being recorded. A shard's actors sit among
 * the `others` (the other shards' actors) in S3, and its listings read theirs too.
 */
function selectedActors({ options, mode, data }: Run, actors: Actor[]): { selected: Actor[]; others: string[] } {
  const transfers = mode.kind === 'apply' ? mode.transfers : undefined;
  const named = transfers
    ? selectActors(actors, options.actors)
    : selectNamedActors(actors, options.actors, data.actorsDir);
  const { shard } = options;
  const selected: Actor[] = [];
  const others: string[] = [];
  for (const actor of named) {
    if (!shard || shardOf(actor.id, shard.count) === shard.index) selected.push(actor);
    else others.push(actor.name);
  }
  return { selected, others };
}

/** Another shard's temp file may be a commit in flight, not a leftover: a shard cleans only its own. */
async function removeOwnStaleTemps({ options, data, lock }: Run, selected: Actor[]): Promise<void> {
  const ours = new Set(selected.map((actor) => `${actor.id}_manifest.json`));
  const owns = options.shard ? (target: string) => ours.has(target) : undefined;
  await removeStaleTemps(data.manifestsDir, { owns, olderThanMs: lock?.takenMs });
}

/** @throws {UsageError} when the actors folder holds no actor folder (the skipped ones said). */
function requireSomeActor({ actors, skipped }: { actors: Actor[]; skipped: Skipped[] }, data: DataRoot): void {
  if (actors.length > 0) return;
  const named = skipped.slice(0, 3).map((s) => `${s.file}: ${s.reason}`);
  if (skipped.length > 3) named.push(`and ${skipped.length - 3} more`);
  const why = named.length > 0 ? ` (skipped: ${named.join('; ')})` : '';
  throw new UsageError(`no actor folder found in ${data.actorsDir}${why}; check --root and --actors-dir`);
}

/**
 * Plans and applies the actors in two stages with their own bounds: a few runners per worker keep every
 * worker busy planning, and applies (commits) run apart (at most COMMITS_IN_FLIGHT), so an fsync waiting on
 * the disk never holds a runner. Nothing is queued per actor up front, so memory does not grow with the
 * number of actors.
 */
async function processAll(
  actors: Actor[],
  planOne: (actor: Actor) => Promise<Planned>,
  run: Run,
): Promise<ActorReport[]> {
  const { options, mode, pool, cache } = run;
  const transfers = mode.kind === 'apply' ? mode.transfers : undefined;
  const context: ApplyContext = {
    data: run.data,
    dryRun: mode.kind === 'plan',
    keepLegacy: options.keepLegacy ?? false,
    keepEntries: mode.kind === 'plan' && mode.entries !== undefined,
    lock: run.lock,
  };
  const reports: ActorReport[] = new Array(actors.length);
  const commits = new Set<Promise<void>>();
  let next = 0;
  const done = (i: number, report: ActorReport) => {
    reports[i] = report;
    options.progress?.actorDone(report);
  };
  const runner = async () => {
    while (next < actors.length) {
      const i = next++;
      const actor = actors[i]!;
      // After a signal, only an actor whose transfers finished (push, pull) is still recorded: that work is done.
      if (options.signal?.aborted && !transfers?.has(actor.name)) {
        done(i, emptyReport(actor, 'not-run'));
        continue;
      }
      const planned = await planOne(actor);
      if (!('report' in planned)) {
        done(i, planned);
        continue;
      }
      while (commits.size >= COMMITS_IN_FLIGHT) await Promise.race(commits);
      const commit: Promise<void> = applyActor(planned, context).then((report) => {
        commits.delete(commit);
        if (cache) recordSettled(cache, planned, report);
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
