/**
 * The lock a writing run holds (SPEC §3 invariant 5, §8): one run at a time per data root, whatever
 * `--actors-dir` or `--manifests-dir` say. It is taken in the actors folder (whose response.json files a run
 * retires and where pull writes images) and in the manifests folder (whose manifests it commits), so two runs
 * that share either folder exclude each other. In each: its own lock (`.actor-sync.lock`, or one per shard),
 * and no other run's that covers the same actors. Shard locks let N machines run at once; a whole-root run,
 * or shards counted differently, would write the same manifests, so they exclude each other: each checks
 * after taking its own lock, so of two starting together at least one gives way.
 */
import { mkdir, readdir, realpath } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDirectoryShared } from '../manifest/commit.js';
import { LockHeldError } from '../errors.js';
import { acquireLock, isLockLive, type AcquireLockOptions, type RunLock } from './lock.js';
import type { DataRoot } from '../engine/root.js';
import { lockName, locksOverlap, type Shard } from '../engine/shard.js';

/**
 * Takes the run's lock in the actors folder, then in the manifests folder (always in that order, so two runs
 * waiting with `--wait` never hold one each). The lock returned holds both; `path` is the actors folder's.
 * @throws {LockHeldError} when another run holds either (without `wait`); a UsageError when a folder is
 * not writable.
 */
export async function acquireRunLock(
  data: Pick<DataRoot, 'actorsDir' | 'manifestsDir'>,
  shard: Shard | undefined,
  options: AcquireLockOptions = {},
): Promise<RunLock> {
  await makeDurableFolder(data.manifestsDir);
  // One folder given twice (the same folder under two names) is locked once: a second lock there would be
  // this run's own, held.
  const sameFolder = (await realpath(data.actorsDir)) === (await realpath(data.manifestsDir));
  const locks: RunLock[] = [];
  try {
    for (const dir of sameFolder ? [data.actorsDir] : [data.actorsDir, data.manifestsDir])
      locks.push(await lockFolder(dir, shard, options));
  } catch (error) {
    await Promise.allSettled(locks.map((lock) => lock.release()));
    throw error;
  }
  return bothLocks(locks);
}

/**
 * The manifests folder, which a root that has never been synced does not have yet. Made durable with the
 * folders above it that were made for it: the manifests committed there must not lose their folder in a
 * power loss after a response.json is retired.
 */
async function makeDurableFolder(manifestsDir: string): Promise<void> {
  const first = await mkdir(manifestsDir, { recursive: true });
  if (first === undefined) return;
  // Each new folder's entry is in its parent: from the manifests folder's parent up to the first one's.
  for (let dir = dirname(manifestsDir); ; dir = dirname(dir)) {
    await fsyncDirectoryShared(dir);
    if (dir === dirname(first) || dir === dirname(dir)) break;
  }
}

/** This run's lock in `dir`, once no other run's live lock there covers the same actors. */
async function lockFolder(dir: string, shard: Shard | undefined, options: AcquireLockOptions): Promise<RunLock> {
  const lock = await acquireLock(dir, lockName(shard), options);
  try {
    for (const name of await readdir(dir)) {
      if (locksOverlap(shard, name) && (await isLockLive(join(dir, name)))) {
        throw new LockHeldError(
          `another actor-sync run holds ${join(dir, name)}, which covers actors this run would write; wait for it to finish (a whole-root run and shard runs, or shards of different counts, cannot run at once)`,
        );
      }
    }
    return lock;
  } catch (error) {
    await lock.release();
    throw error;
  }
}

/** One lock over several: compromised when any is, released together. */
function bothLocks(locks: RunLock[]): RunLock {
  if (locks.length === 1) return locks[0]!;
  return {
    path: locks[0]!.path,
    // A temp file older than the first lock taken predates this run.
    takenMs: Math.min(...locks.map((lock) => lock.takenMs)),
    get compromised() {
      return locks.find((lock) => lock.compromised)?.compromised;
    },
    async release() {
      const results = await Promise.allSettled(locks.map((lock) => lock.release()));
      const failure = results.find((result) => result.status === 'rejected');
      if (failure) throw failure.reason;
    },
  };
}
