/**
 * The worker pool: piscina running `workers/tasks.js` (compiled). Tasks and results are plain data; the
 * types that cross threads are those of `assess.ts` and `hash.ts`.
 */
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Assessment, AssessTask } from './assess.js';
import type { HashResult, HashTask } from './hash.js';
import { LOADED } from './pool-protocol.js';

/** The compiled worker. Tests import this file from `src/` (TypeScript), so they use the build in `dist/`. */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const relative = here.endsWith('.ts') ? '../dist/workers/tasks.js' : '../workers/tasks.js';
  return resolve(dirname(here), relative);
}

/**
 * Each worker's young generation, in MB. A worker's garbage is short-lived (one actor's JSON); V8's default
 * lets it grow to tens of MB per thread, which made peak RSS grow with the number of actors.
 */
const YOUNG_GENERATION_MB = 4;

/**
 * Tasks handed to a thread before it asks for more. Each task is synchronous work, so the extra ones wait
 * in the thread's queue; with one at a time, a thread idled for a round trip through the main thread after
 * every actor (a quarter of a warm run's thread time at 2890 actors).
 */
const TASKS_PER_THREAD = 4;

export interface WorkerPool {
  readonly threads: number;
  assess(task: AssessTask): Promise<Assessment>;
  /** Every S3 URL an actor's files name: what `--remote` lists. */
  urls(task: Pick<AssessTask, 'actor' | 'data'>): Promise<string[]>;
  hash(task: HashTask): Promise<HashResult[]>;
  destroy(): Promise<void>;
}

/** Starts `threads` worker threads (default: the machine's available parallelism). */
export function createPool(threads = availableParallelism()): WorkerPool {
  const pool = new Piscina({ filename: workerFile(), name: 'assess', minThreads: threads, maxThreads: threads, concurrentTasksPerWorker: TASKS_PER_THREAD, idleTimeout: 60_000, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
  const loaded = Promise.all(pool.threads.map(settled));
  return {
    threads,
    assess: (task) => pool.run(task, { name: 'assess' }) as Promise<Assessment>,
    urls: (task) => pool.run(task, { name: 'urls' }) as Promise<string[]>,
    hash: (task) => pool.run(task, { name: 'hash' }) as Promise<HashResult[]>,
    // Node 20 aborts the whole process when a thread is stopped while `require()` links its ES modules
    // (piscina loads the worker file with require, which loads ES modules synchronously since Node 20.19).
    // A short run can end before its last thread has loaded, so each thread is let finish loading first.
    destroy: async () => {
      await loaded;
      await pool.destroy();
    },
  };
}

/** Settles once `worker` has loaded its modules, or has exited without. */
function settled(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      worker.off('message', onMessage);
      worker.off('exit', done);
      resolve();
    };
    const onMessage = (message: unknown) => {
      if (message === LOADED) done();
    };
    worker.on('message', onMessage);
    worker.once('exit', done);
  });
}
