/**
 * The worker pool: piscina running `dist/workers/tasks.js` (workers/tasks.ts, built). Tasks and results are plain data; the
 * types that cross threads are those of `assess.ts` and `hash.ts`.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { Assessment, AssessTask } from '../../workers/assess.js';
import type { HashResult, HashTask } from '../../workers/hash.js';
import { hashedBytesOf, loadedThreadOf, workerFile } from '../shared/pool-protocol.js';

/**
 * Each worker's young generation, in MB. A worker's garbage is short-lived (one actor's JSON); V8's default
 * lets it grow to tens of MB per thread, which made peak RSS grow with the number of actors.
 */
const YOUNG_GENERATION_MB = 4;

/**
 * Tasks handed to a thread before it asks for more. A task is nearly all synchronous work, so the extra
 * ones mostly wait in the thread's queue; with one at a time, a thread idled for a round trip through the
 * main thread after every actor (a quarter of a warm run's thread time at 2890 actors).
 */
const TASKS_PER_THREAD = 4;

export interface WorkerPool {
  readonly threads: number;
  assess(task: AssessTask): Promise<Assessment>;
  /** Every S3 URL an actor's files name: what `--remote` lists. */
  urls(task: Pick<AssessTask, 'actor' | 'data'>): Promise<string[]>;
  hash(task: HashTask): Promise<HashResult[]>;
  /** Calls `listener` with the bytes the threads read for hashing, every few MB, as they read; returns its removal. */
  onHashed?(listener: (bytes: number) => void): () => void;
  /** Starts the threads now rather than at the first task (a no-op for a pool whose threads are started). */
  start(): void;
  destroy(): Promise<void>;
}

/** Starts `threads` worker threads (default: the machine's available parallelism). */
export function createPool(threads = availableParallelism()): WorkerPool {
  const pool = startPiscina(threads);
  const heard = listenToThreads(pool);
  return {
    threads,
    assess: (task) => pool.run(task, { name: 'assess' }) as Promise<Assessment>,
    urls: (task) => pool.run(task, { name: 'urls' }) as Promise<string[]>,
    hash: (task) => pool.run(task, { name: 'hash' }) as Promise<HashResult[]>,
    onHashed: (listener) => {
      heard.hashedListeners.add(listener);
      return () => void heard.hashedListeners.delete(listener);
    },
    start: () => undefined,
    // Node 20 aborts the whole process when a thread is stopped while `require()` links its ES modules
    // (piscina loads the worker file with require, which loads ES modules synchronously since Node 20.19).
    // A short run can end before its last thread has loaded, so each thread is let finish loading first.
    destroy: async () => {
      await allLoaded(pool, heard);
      await pool.destroy();
    },
  };
}

function startPiscina(threads: number): Piscina {
  return new Piscina({
    filename: workerFile(),
    name: 'assess',
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: TASKS_PER_THREAD,
    idleTimeout: 60_000,
    resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
  });
}

/** What the threads have said: which have loaded their modules, and who waits for that or for hashed bytes. */
interface ThreadNews {
  loaded: Set<number>; // thread ids
  wakers: Set<() => void>;
  hashedListeners: Set<(bytes: number) => void>;
}

function listenToThreads(pool: Piscina): ThreadNews {
  const heard: ThreadNews = { loaded: new Set(), wakers: new Set(), hashedListeners: new Set() };
  pool.on('message', (message: unknown) => {
    const bytes = hashedBytesOf(message);
    if (bytes !== undefined) {
      for (const listener of heard.hashedListeners) listener(bytes);
      return;
    }
    const threadId = loadedThreadOf(message);
    if (threadId === undefined) return;
    heard.loaded.add(threadId);
    for (const wake of heard.wakers) wake();
  });
  return heard;
}

/** Settles once every thread (a replacement piscina started included) has loaded its modules or exited. */
async function allLoaded(pool: Piscina, { loaded, wakers }: ThreadNews): Promise<void> {
  for (;;) {
    const loading = pool.threads.filter((worker) => worker.threadId !== -1 && !loaded.has(worker.threadId));
    if (loading.length === 0) return;
    await new Promise<void>((resolve) => {
      const wake = () => {
        wakers.delete(wake);
        for (const worker of loading) worker.off('exit', wake);
        resolve();
      };
      wakers.add(wake);
      for (const worker of loading) worker.once('exit', wake);
    });
  }
}
