/**
 * Sharding (SPEC §8): N machines each take a disjoint, stable slice of the actors. An actor's shard is a
 * hash of its id, so adding actors never moves the others between shards.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../errors.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/**
 * The shard from `--shard K/N`, or from a Kubernetes Indexed Job's 0-based `JOB_COMPLETION_INDEX` with
 * `--shard-count N` (or `ACTOR_SYNC_SHARD_COUNT`). `--shard` wins; no shard means every actor.
 */
export function parseShard(
  flag: string | undefined,
  shardCount: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Shard | undefined {
  if (flag !== undefined) {
    const match = /^(\d+)\/(\d+)$/.exec(flag);
    if (!match) throw new UsageError(`--shard ${flag}: expected K/N, e.g. --shard 1/4`);
    return checked(Number(match[1]), Number(match[2]), `--shard ${flag}`);
  }
  const envCount = env.ACTOR_SYNC_SHARD_COUNT || undefined;
  if (shardCount === undefined && envCount === undefined) return undefined;
  const source = shardCount !== undefined ? `--shard-count ${shardCount}` : `ACTOR_SYNC_SHARD_COUNT=${envCount}`;
  const count = shardCount ?? (/^\d+$/.test(envCount!) ? Number(envCount) : NaN);
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`${source}: expected a whole number of at least 1`);
  const index = env.JOB_COMPLETION_INDEX;
  // Kubernetes counts from 0: the range said is the variable's own, not the 1-based shard's.
  if (index === undefined)
    throw new UsageError(`${source} needs JOB_COMPLETION_INDEX (0-based, from 0 to ${count - 1}) or --shard K/N`);
  if (!/^\d+$/.test(index) || Number(index) >= count) {
    throw new UsageError(
      `JOB_COMPLETION_INDEX=${index}: expected a whole number from 0 to ${count - 1} (0-based, with ${source})`,
    );
  }
  return { index: Number(index) + 1, count };
}

function checked(index: number, count: number, source: string): Shard {
  if (!Number.isInteger(count) || count < 1)
    throw new UsageError(`${source}: the shard count must be a whole number of at least 1`);
  if (index < 1 || index > count) throw new UsageError(`${source}: the shard must be from 1 to ${count}`);
  return { index, count };
}

/** The 1-based shard an actor id falls in: the first 32 bits of its MD5, modulo the count. */
export function shardOf(actorId: string, count: number): number {
  return (createHash('md5').update(actorId).digest().readUInt32BE(0) % count) + 1;
}

/** The lock a shard takes: shards of one root run at once, each alone on its own slice. */
export function lockName(shard: Shard | undefined): string {
  return shard ? `.actor-sync.shard-${shard.index}-of-${shard.count}.lock` : '.actor-sync.lock';
}

const LOCK_NAME = /^\.actor-sync(?:\.shard-(\d+)-of-(\d+))?\.lock$/;

/**
 * Whether another run's lock (by its name) covers actors this run would write: a whole-root run overlaps
 * every shard, and shards of different counts overlap each other. Shards of one count never do.
 */
export function locksOverlap(ours: Shard | undefined, otherName: string): boolean {
  const match = LOCK_NAME.exec(otherName);
  if (!match || otherName === lockName(ours)) return false;
  if (!ours || match[2] === undefined) return true;
  return Number(match[2]) !== ours.count;
}
