/**
 * The lock a writing run holds (SPEC §3 invariant 5, §8): its own lock (`.actor-sync.lock`, or one per
 * shard), and no other run's that covers the same actors. Shard locks let N machines run at once; a
 * whole-root run, or shards counted differently, would write the same manifests, so they exclude each
 * other: each checks after taking its own lock, so of two starting together at least one gives way.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDirectoryShared } from './manifest/commit.js';
import { LockHeldError } from './errors.js';
import { acquireLock, isLockLive, type AcquireLockOptions, type RunLock } from './lock.js';
import { lockName, locksOverlap, type Shard } from './shard.js';

export async function acquireRunLock(manifestsDir: string, shard: Shard | undefined, options: AcquireLockOptions = {}): Promise<RunLock> {
  // The lock lives in the manifests folder, which a root that has never been synced does not have yet. Made
  // durable with the folders above it that were made for it: the manifests committed there must not lose
  // their folder in a power loss after a response.json is retired.
  const first = await mkdir(manifestsDir, { recursive: true });
  if (first !== undefined) {
    // Each new folder's entry is in its parent: from the manifests folder's parent up to the first one's.
    for (let dir = dirname(manifestsDir); ; dir = dirname(dir)) {
      await fsyncDirectoryShared(dir);
      if (dir === dirname(first) || dir === dirname(dir)) break;
    }
  }
  const lock = await acquireLock(manifestsDir, lockName(shard), options);
  try {
    for (const name of await readdir(manifestsDir)) {
      if (locksOverlap(shard, name) && (await isLockLive(join(manifestsDir, name)))) {
        throw new LockHeldError(
          `another actor-sync run holds ${join(manifestsDir, name)}, which covers actors this run would write; wait for it to finish (a whole-root run and shard runs, or shards of different counts, cannot run at once)`,
        );
      }
    }
    return lock;
  } catch (error) {
    await lock.release();
    throw error;
  }
}
