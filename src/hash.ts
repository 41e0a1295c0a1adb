/**
 * Stat and streaming MD5 of a batch of files, run inside a worker thread. Synchronous I/O is the fast path
 * there (the thread has nothing else to do), and it leaves no async work behind when a task returns. One
 * buffer per thread is reused for every read, so memory does not grow with file size.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type BigIntStats } from 'node:fs';

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

export function hashFiles(task: HashTask): HashResult[] {
  return task.files.map((file) => hashFile(file, task));
}

function hashFile(file: HashFile, task: HashTask): HashResult {
  try {
    const stats = statSync(file.path, { bigint: true });
    if (!stats.isFile()) return { ok: false, code: 'ENOTFILE', reason: 'not a regular file; skipped' };
    const token = tokenOf(stats);
    if (file.reuse && !task.verify && sameToken(token, file.reuse) && !racilyClean(stats, task.racyFromNs)) {
      return { ok: true, ...token, md5: file.reuse.md5, reused: true };
    }
    for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
      const result = hashOnce(file.path);
      if (result) return result;
    }
    return { ok: false, code: 'ECHANGING', reason: `kept changing while it was hashed (${ATTEMPTS} attempts)` };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    return { ok: false, code, reason: (error as Error).message };
  }
}

/** One pass; undefined when the file changed while it was read, so the caller tries again. */
function hashOnce(path: string): HashResult | undefined {
  // O_NONBLOCK: a FIFO swapped in after the stat must not block the open.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile()) return { ok: false, code: 'ENOTFILE', reason: 'not a regular file; skipped' };
    const hash = createHash('md5');
    let total = 0;
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
      total += read;
    }
    const after = fstatSync(fd, { bigint: true });
    if (after.mtimeNs !== before.mtimeNs || after.size !== before.size || BigInt(total) !== before.size) return undefined;
    return { ok: true, ...tokenOf(before), md5: hash.digest('hex'), reused: false };
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
