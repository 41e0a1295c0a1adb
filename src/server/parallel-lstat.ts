/**
 * lstat of many paths on two threads: this one and a worker thread of its own, each a tight synchronous loop
 * over half of them, the worker's results in shared memory, one message each way per batch. A warm actor
 * list is ~5 800 lstats and little else (bench/README.md, issue 15); the promise API costs more per call
 * than the syscall, and the assessment pool's threads may be busy with assessments.
 */
import { Worker } from 'node:worker_threads';
import { lstatHere, type Lstat, type StatToken } from '../fingerprint.js';

export interface ParallelLstat {
  /** Each path's lstat, taken after this call, by path; a path not listed is lstat'ed when asked for. */
  all(paths: string[]): Promise<Lstat>;
  close(): Promise<void>;
}

/** Per path: found, dev, ino, size, mtimeNs, ctimeNs, mode. */
const FIELDS = 7;

// Plain JavaScript evaluated in the worker (no file to find in dist/, the bundle or the sources under test).
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { lstatSync } = require('node:fs');
parentPort.on('message', ({ paths, shared }) => {
  const rows = new BigInt64Array(shared);
  const unsigned = new BigUint64Array(shared);
  paths.forEach((path, i) => {
    let s;
    try { s = lstatSync(path, { bigint: true, throwIfNoEntry: false }); } catch {}
    if (s === undefined) return;
    const at = i * ${FIELDS};
    rows[at] = 1n; unsigned[at + 1] = s.dev; unsigned[at + 2] = s.ino; unsigned[at + 3] = s.size;
    rows[at + 4] = s.mtimeNs; rows[at + 5] = s.ctimeNs; unsigned[at + 6] = s.mode;
  });
  parentPort.postMessage(null);
});`;

export function parallelLstat(): ParallelLstat {
  let worker: Worker | undefined = new Worker(WORKER, { eval: true });
  worker.unref();
  // Batches are answered in order: the oldest waiting one is answered first.
  const waiting: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  const fail = (error: unknown) => {
    worker = undefined;
    for (const batch of waiting.splice(0)) batch.reject(error);
  };
  worker.on('message', () => waiting.shift()?.resolve());
  worker.on('error', fail);
  worker.on('exit', () => fail(new Error('the lstat thread stopped')));

  return {
    async all(paths) {
      const found = new Map<string, StatToken | undefined>();
      const cut = worker === undefined ? paths.length : Math.ceil(paths.length / 2);
      const theirs = paths.slice(cut);
      const shared = new SharedArrayBuffer(theirs.length * FIELDS * 8);
      const done = theirs.length === 0 ? undefined : new Promise<void>((resolve, reject) => {
        waiting.push({ resolve, reject });
        worker!.postMessage({ paths: theirs, shared });
      });
      for (let i = 0; i < cut; i += 1) found.set(paths[i]!, lstatHere(paths[i]!));
      try {
        await done;
        read(theirs, shared, found);
      } catch {
        // The thread is gone: this thread lstats the rest when asked for them.
      }
      return (path) => (found.has(path) ? found.get(path) : lstatHere(path));
    },
    async close() {
      const stopping = worker;
      worker = undefined;
      await stopping?.terminate();
    },
  };
}

function read(paths: string[], shared: SharedArrayBuffer, into: Map<string, StatToken | undefined>): void {
  const rows = new BigInt64Array(shared);
  const unsigned = new BigUint64Array(shared);
  paths.forEach((path, i) => {
    const at = i * FIELDS;
    into.set(path, rows[at] === 0n ? undefined : { dev: unsigned[at + 1]!, ino: unsigned[at + 2]!, size: unsigned[at + 3]!, mtimeNs: rows[at + 4]!, ctimeNs: rows[at + 5]!, mode: unsigned[at + 6]! });
  });
}
