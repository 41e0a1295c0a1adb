/**
 * plan: what a run would change for one actor, without writing anything. An actor is refused (it shares a
 * folder or manifest), settled by the sync cache (nothing it was last assessed from has changed), or
 * assessed in the worker pool (read, hash, classify), which returns its entries, differences and commit.
 */
import type { Assessment, AssessTask, RemoteCheck } from '../../workers/assess.js';
import type { Actor, Refusal } from './discover.js';
import { messageOf } from '../errors.js';
import type { WorkerPool } from './pool.js';
import { emptyReport, failed, type ActorReport } from './report.js';
import type { DataRoot } from './root.js';
import type { RunCache } from '../cache/run-cache.js';
import { settledReport } from '../cache/sync-cache.js';

/** Per actor, what push's or pull's own transfers found: URLs given and objects written. */
export type Transfers = ReadonlyMap<string, Pick<AssessTask, 'remote' | 'assignedUrls'>>;

/** The entries a report keeps: every actor's (push and pull plan from them), or those of actors not entirely synced (check --require-synced). */
export type KeepEntries = 'all' | 'unsynced';

/** What a run does with each actor's plan. */
export type Mode =
  /** Writes nothing: status, check, `sync --dry-run`, and push and pull's planning. */
  | { kind: 'plan'; entries?: KeepEntries }
  /** Commits each actor once it is planned: sync, and push and pull after their transfers (with what those found). */
  | { kind: 'apply'; transfers?: Transfers };

/** HEADs URLs whose listed ETag an assessment could not take for an MD5 (RemoteCheck.fromListing). */
export type Confirm = (urls: string[]) => Promise<Record<string, RemoteCheck>>;

export interface PlanContext {
  data: DataRoot;
  pool: WorkerPool;
  mode: Mode;
  verify: boolean;
  keepLegacy: boolean;
  /** The run's start: `training_data_updated` of what it changes. */
  startedAt: string;
  /** Actors refused by what all the folders show (shared folders or manifests). */
  refused: ReadonlyMap<string, Refusal>;
  /** Remote findings per actor (`--remote`), or push's and pull's transfers. */
  found?: Transfers;
  confirm?: Confirm;
  cache?: RunCache;
  /** `--remote`: actors whose cache entry the listing confirmed (nothing local changed, S3 holds what it recorded). */
  settledRemotely?: ReadonlyMap<string, ActorReport>;
}

/** A planned actor: assessed (to apply), or already reported (refused, settled, failed). */
export type Planned = Assessment | ActorReport;

/** Actors settled from the cache between two turns of the event loop (each takes ≈ 0.25 ms). */
const YIELD_EVERY = 64;

/** The run's planner: one call per actor. */
export function planner(context: PlanContext): (actor: Actor) => Promise<Planned> {
  const { mode } = context;
  const entries = mode.kind === 'plan' ? mode.entries : undefined;
  let settledInARow = 0;
  return (actor) => {
    // Before the cache: an actor settled alone may have come to share its folder or manifest since. It is
    // not at rest, so its entry goes too.
    const refusal = context.refused.get(actor.name);
    if (refusal) {
      context.cache?.next.delete(actor.name);
      return Promise.resolve(failed(emptyReport(actor, 'failed'), refusal.file, refusal.reason));
    }
    // Settled by the cache: nothing its last assessment read has changed (no thread, no parsing). A dry run's
    // differences of a settled actor are none; a run that must show the entries assesses every actor.
    let settled =
      entries === 'all'
        ? undefined
        : (context.settledRemotely?.get(actor.name) ??
          settledReport(actor, context.data, context.cache?.usable.get(actor.name)));
    if (
      settled &&
      entries === 'unsynced' &&
      settled.statistics?.training_synced_count !== settled.statistics?.training_images_count
    )
      settled = undefined;
    // Settling is synchronous: now and then, let signals, progress and the lock's refresh timer run.
    if (settled)
      return ++settledInARow % YIELD_EVERY === 0
        ? new Promise((resolve) => setImmediate(resolve, settled))
        : Promise.resolve(settled);
    settledInARow = 0;
    return assess(actor, context).catch((error: unknown) =>
      // A worker that died (out of memory, a crash in native code), or S3 lost while confirming (the listing
      // reached it), fails its actor, not the run: commits of others may be in flight.
      failed(emptyReport(actor, 'failed'), actor.dir, `could not be processed (${messageOf(error)}); left unchanged`),
    );
  };
}

/** Assessed in a worker; an actor whose listed ETags do not settle its images is assessed again, with what a HEAD of each says. */
async function assess(actor: Actor, context: PlanContext): Promise<Assessment> {
  const plans = context.mode.kind === 'plan';
  const task: AssessTask = {
    actor,
    data: context.data,
    verify: context.verify,
    keepLegacy: context.keepLegacy,
    now: context.startedAt,
    explain: plans,
    differences: plans,
    settle: context.cache !== undefined && !plans,
    ...context.found?.get(actor.name),
  };
  const first = await context.pool.assess(task);
  if (!first.confirm) return first;
  // Without a HEAD to send, an assessment that waits on one would pass for a blank report: fail the actor.
  if (!context.confirm)
    throw new Error(
      `${first.confirm.length} of its images need a HEAD of their object to be confirmed, and this run checks no remote`,
    );
  return context.pool.assess({ ...task, remote: { ...task.remote, ...(await context.confirm(first.confirm)) } });
}
