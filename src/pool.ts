/**
 * The hashing pool: piscina running `workers/hash-files.js` (compiled), one task per actor. The task and
 * result types are the only things that cross threads.
 */
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';

/** What a previous run recorded for a file: reused when the stat token still matches. */
export interface StatToken {
  size: number;
  mtimeNs: string;
  inode: number;
}

export interface HashFile {
  path: string;
  reuse?: StatToken & { md5: string };
}

export interface HashTask {
  files: HashFile[];
  /**
   * Files whose mtime is not older than this (the manifest's own mtime, in ns) are "racily clean": they
   * may have changed in the same clock tick as the write that recorded them, so they are rehashed.
   */
  racyFromNs: string | null;
  /** Rehash even when the stat token matches (`--verify`). */
  verify: boolean;
}

export type HashResult =
  | ({ ok: true; md5: string; reused: boolean } & StatToken)
  | { ok: false; code: string; reason: string };

/** The compiled worker. Tests import this file from `src/` (TypeScript), so they use the build in `dist/`. */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const relative = here.endsWith('.ts') ? '../dist/workers/hash-files.js' : '../workers/hash-files.js';
  return resolve(dirname(here), relative);
}

export interface HashPool {
  hash(task: HashTask, signal?: AbortSignal): Promise<HashResult[]>;
  destroy(): Promise<void>;
}

/** Starts `workers` threads (default: the machine's available parallelism). */
export function createHashPool(workers = availableParallelism()): HashPool {
  const pool = new Piscina({
    filename: workerFile(),
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: 60_000,
  });
  return {
    hash: (task, signal) => pool.run(task, signal ? { signal } : {}) as Promise<HashResult[]>,
    destroy: () => pool.destroy(),
  };
}
