/**
 * A worker pool that starts nothing until it is used. Kept apart from pool.ts so that a run which never needs
 * a thread never loads piscina either (its modules are a fair share of a short run's start-up).
 */
import { availableParallelism } from 'node:os';
import type { WorkerPool } from './pool.js';

/**
 * A pool of `threads` threads (default: the machine's available parallelism, as createPool's) whose threads
 * start at its first task (or `start()`), from `open`: a run that the sync cache
 * settles whole never starts a thread, which on two cores is most of its time (with threads always started: a
 * warm scale-1 sync's CPU 0.79 → 1.48 s, peak RSS 67 → 94 MB; issue 16).
 */
export function lazyPool(threads: number | undefined, open: () => Promise<WorkerPool>): WorkerPool {
  let opened: Promise<WorkerPool> | undefined;
  const hashedListeners = new Set<(bytes: number) => void>();
  const pool = () =>
    (opened ??= open().then((started) => {
      started.onHashed?.((bytes) => {
        for (const listener of hashedListeners) listener(bytes);
      });
      return started;
    }));
  return {
    threads: threads ?? availableParallelism(),
    assess: async (task) => (await pool()).assess(task),
    urls: async (task) => (await pool()).urls(task),
    hash: async (task) => (await pool()).hash(task),
    onHashed: (listener) => {
      hashedListeners.add(listener);
      return () => void hashedListeners.delete(listener);
    },
    // A pool that fails to start fails the first task that waits for it, not the call that began starting it.
    start: () => void pool().catch(() => undefined),
    destroy: async () => {
      await (await opened?.catch(() => undefined))?.destroy();
    },
  };
}
