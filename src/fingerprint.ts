/**
 * The fingerprint of what one actor's assessment reads (see sync-cache.ts): computed by the worker from
 * what it read and hashed, and by a later run from stats and two small reads; equal fingerprints, equal
 * assessments. Kept apart from the cache file so the worker threads load only this.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { sep } from 'node:path';
import { isImageName, type Actor } from './discover.js';
import { MAX_JSON_BYTES, MAX_MANIFEST_BYTES } from './json-scan.js';
import { md5Hex } from './md5/hex.js';
import type { TrainingStatistics } from './manifest/schema.js';
import { RETIRING_NAME } from './retire.js';
import type { DataRoot } from './root.js';

/**
 * Bump when an assessment of the same files could come out differently (classify, merge, the manifest's
 * layout): every fingerprint of an older version is then a miss.
 */
export const CACHE_VERSION = 1;

/** One actor's settled state: its fingerprint and what its assessment found. */
export interface CacheEntry {
  fingerprint: string;
  /** MD5 of the manifest's bytes (also in the fingerprint): most misses are told by it alone, before any stat. */
  manifestMd5: string;
  statistics: TrainingStatistics;
  /** Local images, each a hash reused when the actor is reported from the cache. */
  images: number;
}

/** What an assessment read that decides its outcome, as both the worker and a later run can tell it. */
export interface Inputs {
  /** MD5 of the manifest's bytes (after this run's commit, if it wrote one). */
  manifestMd5: string;
  /** MD5 of prompt_metadata.json's bytes, or null when there is none. */
  promptMd5: string | null;
  /** Every local image: name, size, mtime (ns) and inode. */
  images: { filename: string; size: number; mtimeNs: string; inode: number }[];
}

/** The fingerprint of an actor's inputs: with stillSettled's checks (racily clean, no response.json, no symlinks), equal fingerprints, equal assessments. */
export function fingerprintOf(actor: Actor, data: DataRoot, inputs: Inputs): string {
  const images = [...inputs.images].sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0)).map((i) => [i.filename, i.size, i.mtimeNs, i.inode]);
  const key = [CACHE_VERSION, data.root, data.rootReal, actor.name, actor.trainingDir, actor.manifestPath, inputs.manifestMd5, inputs.promptMd5, images];
  return md5Hex(JSON.stringify(key));
}

/**
 * True when nothing the assessment that made `entry` read has changed since: the same fingerprint, from
 * stats and two small reads (the manifest and prompt_metadata.json, never through a symlink), no parsing.
 * What `sync` asks before it calls an actor unchanged, and what the server asks before it reuses an answer.
 */
export function stillSettled(actor: Actor, data: DataRoot, entry: CacheEntry): boolean {
  try {
    // The cheap questions first: a run after the manifests changed (a restore, an edit) misses here.
    const folder = lstatSync(actor.trainingDir, { throwIfNoEntry: false });
    if (folder && !folder.isDirectory()) return false; // a symlinked folder: the full path judges it
    const names: string[] = [];
    for (const dirent of folder ? readdirSync(actor.trainingDir, { withFileTypes: true }) : []) {
      if (!isImageName(dirent.name)) continue;
      if (!dirent.isFile()) return false; // a symlink, folder or FIFO: the full path warns or follows
      names.push(dirent.name);
    }
    if (names.length !== entry.images) return false;
    const manifest = readPlainFile(actor.manifestPath, MAX_MANIFEST_BYTES);
    const manifestMd5 = manifest && md5Hex(manifest.bytes);
    if (!manifest || manifestMd5 !== entry.manifestMd5) return false;
    // A folder entry's name holds no separator: concatenation is path.join here, without its normalising,
    // which was a tenth of a warm run.
    const dir = actor.trainingDir + sep;
    // Looked up by path, as the full assessment opens them (a folder listing would miss `Response.json` on a
    // volume that ignores case): any response.json is one to retire, as is one a stopped run left aside.
    if (lstatSync(`${dir}response.json`, { throwIfNoEntry: false }) || lstatSync(dir + RETIRING_NAME, { throwIfNoEntry: false })) return false;
    const prompt = readPlainFile(`${dir}prompt_metadata.json`, MAX_JSON_BYTES);
    if (prompt === undefined) return false;
    const images: Inputs['images'] = [];
    for (const filename of names) {
      const stats = lstatSync(dir + filename, { bigint: true });
      // Git's racily-clean rule, as the full assessment applies it: an image not older than the manifest
      // may have changed in the same clock tick as the write that recorded its hash.
      if (!stats.isFile() || stats.mtimeNs >= manifest.mtimeNs) return false;
      images.push({ filename, size: Number(stats.size), mtimeNs: stats.mtimeNs.toString(), inode: Number(stats.ino) });
    }
    return fingerprintOf(actor, data, { manifestMd5, promptMd5: prompt ? md5Hex(prompt.bytes) : null, images }) === entry.fingerprint;
  } catch {
    return false; // vanished or unreadable: the full assessment reports it properly
  }
}

/** `stillSettled` for a slice of the actors, as one task of a worker thread. */
export interface SettledTask {
  data: DataRoot;
  actors: { actor: Actor; entry: CacheEntry }[];
}

/** For each actor of the task, whether its entry still stands (the worker's `settled` task). */
export function settledActors(task: SettledTask): boolean[] {
  return task.actors.map(({ actor, entry }) => stillSettled(actor, task.data, entry));
}

/**
 * A regular file's bytes and mtime; null when there is no such file; undefined for a symlink, anything but a
 * regular file, a file larger than `maxBytes` (never read: the full assessment refuses it, and a server
 * checking on every request must not read a gigabyte each time), or a file that cannot be read (the full
 * assessment then says why).
 */
function readPlainFile(path: string, maxBytes: number): { bytes: Buffer; mtimeNs: bigint } | null | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : undefined;
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile() || stats.size > BigInt(maxBytes)) return undefined;
    return { bytes: readFileSync(fd), mtimeNs: stats.mtimeNs };
  } finally {
    closeSync(fd);
  }
}
