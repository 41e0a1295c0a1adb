/** A run lock held by the test itself, as a live run on this host would hold it. */
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { LockOwner } from '../../src/lock/owner.js';
import { LOCK_NAME } from './crash.js';

/**
 * Holds the lock `<dir>/<name>` (by default `.actor-sync.lock`; a shard's is `.actor-sync.shard-1-of-2.lock`,
 * owner.json written as src/lock.ts reads it) on behalf of this test process: its pid is alive, and the
 * folder's mtime is an hour ahead, so no run takes the lock over as stale however long the test takes (a
 * SIGSTOPped run's lock goes stale after 10 s). Resolves with its release.
 */
export async function holdLock(
  dir: string,
  name = LOCK_NAME,
): Promise<{ pid: number; path: string; release: () => Promise<void> }> {
  const lock = join(dir, name);
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    started: new Date().toISOString(),
    token: 'test-held',
  };
  await mkdir(lock);
  await writeFile(join(lock, 'owner.json'), JSON.stringify(owner));
  const hourAhead = new Date(Date.now() + 3_600_000);
  await utimes(lock, hourAhead, hourAhead);
  return { pid: owner.pid, path: lock, release: () => rm(lock, { recursive: true, force: true }) };
}
