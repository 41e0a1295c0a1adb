/**
 * Stat and MD5 of a batch of files, run inside a worker thread. Synchronous I/O is the fast path there (the
 * thread has nothing else to do), and it leaves no async work behind when a task returns. The files to hash
 * go through md5/lanes.ts, four at a time; node:crypto hashes them one by one where WebAssembly SIMD is
 * missing. Buffers are reused for every read, so memory does not grow with file size.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type BigIntStats } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { lanesAvailable } from '../src/md5/engine.js';
import { changedWhileRead, md5FilesInLanes, notRegularFile, type LaneOutcome } from './md5-lanes.js';
import { hashedMessage } from '../src/shared/pool-protocol.js';

const buffer = Buffer.allocUnsafe(1 << 20);
const ATTEMPTS = 3;

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

/**
 * Bytes read between two progress messages to the main thread: a large image (3 GB) shows progress while it
 * is read, and a cold run of small images costs a message per few MB, not one per file.
 */
export const PROGRESS_BYTES = 8 << 20;
let unreported = 0;

/** In a worker thread, tells the main thread (pool.ts) every {@link PROGRESS_BYTES} read; elsewhere nothing. */
function reportRead(bytes: number): void {
  unreported += bytes;
  if (unreported < PROGRESS_BYTES) return;
  parentPort?.postMessage(hashedMessage(unreported));
  unreported = 0;
}

/** Stat and MD5 of each file; `onRead` is told the bytes of each read as it is made (default: progress messages). */
export function hashFiles(task: HashTask, onRead: (bytes: number) => void = reportRead): HashResult[] {
  const results: HashResult[] = new Array(task.files.length);
  let pending: number[] = [];
  for (const [i, file] of task.files.entries()) {
    const settled = statFile(file, task);
    if (settled) results[i] = settled;
    else pending.push(i);
  }
  // Files are hashed four at a time in WebAssembly SIMD lanes (a lone file by node:crypto, faster on one
  // stream); one that changed while it was read is tried again.
  const lanes = lanesAvailable();
  for (let attempt = 0; attempt < ATTEMPTS && pending.length > 0; attempt += 1) {
    const outcomes =
      lanes && pending.length > 1
        ? md5FilesInLanes(
            pending.map((i) => task.files[i]!.path),
            onRead,
          )
        : pending.map((i) => hashOnce(task.files[i]!.path, onRead));
    const changed: number[] = [];
    for (const [k, outcome] of outcomes.entries()) {
      const i = pending[k]!;
      if (outcome.ok) results[i] = { ok: true, ...tokenOf(outcome.stats), md5: outcome.md5, reused: false };
      else if (outcome.changed) changed.push(i);
      else results[i] = failure(outcome.error);
    }
    pending = changed;
  }
  for (const i of pending)
    results[i] = { ok: false, code: 'ECHANGING', reason: `kept changing while it was hashed (${ATTEMPTS} attempts)` };
  return results;
}

/** The stat of a file and, when its recorded hash still holds, the result; undefined when it must be hashed. */
function statFile(file: HashFile, task: HashTask): HashResult | undefined {
  try {
    const stats = statSync(file.path, { bigint: true });
    if (!stats.isFile()) return { ok: false, code: 'ENOTFILE', reason: 'not a regular file; skipped' };
    const token = tokenOf(stats);
    if (file.reuse && !task.verify && sameToken(token, file.reuse) && !racilyClean(stats, task.racyFromNs)) {
      return { ok: true, ...token, md5: file.reuse.md5, reused: true };
    }
    return undefined;
  } catch (error) {
    return failure(error);
  }
}

function failure(error: unknown): HashResult {
  const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
  return { ok: false, code, reason: (error as Error).message };
}

/** One file with node:crypto (where the lanes are not available): the same outcomes as the lanes give. */
function hashOnce(path: string, onRead: (bytes: number) => void): LaneOutcome {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO swapped in after the stat must not block the open.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return { ok: false, changed: false, error: error as Error };
  }
  try {
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile()) return { ok: false, changed: false, error: notRegularFile() };
    const hash = createHash('md5');
    let total = 0;
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
      total += read;
      onRead(read);
    }
    const after = fstatSync(fd, { bigint: true });
    if (changedWhileRead(before, after, total)) return { ok: false, changed: true };
    return { ok: true, md5: hash.digest('hex'), stats: before };
  } catch (error) {
    return { ok: false, changed: false, error: error as Error };
  } finally {
    closeSync(fd);
  }
}

function tokenOf(stats: BigIntStats): StatToken {
  return { size: Number(stats.size), mtimeNs: stats.mtimeNs.toString(), inode: Number(stats.ino) };
}

function sameToken(a: StatToken, b: StatToken): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.inode === b.inode;
}

function racilyClean(stats: BigIntStats, racyFromNs: string | null): boolean {
  return racyFromNs !== null && stats.mtimeNs >= BigInt(racyFromNs);
}
