/**
 * The fingerprint of what one actor's assessment reads (see sync-cache.ts): computed by the worker from
 * what it read and hashed, and by a later run from stats and two small reads; equal fingerprints, equal
 * assessments. Kept apart from the cache file so the worker threads load only this.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  type BigIntStats,
} from 'node:fs';
import { sep } from 'node:path';
import { isImageName, type Actor } from '../engine/discover.js';
import { MAX_JSON_BYTES, MAX_MANIFEST_BYTES } from '../shared/json-scan.js';
import { md5Hex } from '../md5/hex.js';
import type { TrainingStatistics } from '../manifest/schema.js';
import { RETIRING_NAME } from '../engine/retire.js';
import type { DataRoot } from '../engine/root.js';
import { compareCodeUnits } from '../shared/order.js';

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
  /**
   * Each URL the actor's files name → the ETag its object had (null: none), when a `--remote` run that
   * lists the same may settle the actor from this entry (assess.ts `restingRemote`).
   */
  remote?: Record<string, string | null>;
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
  const images = [...inputs.images]
    .sort((a, b) => compareCodeUnits(a.filename, b.filename))
    .map((i) => [i.filename, i.size, i.mtimeNs, i.inode]);
  const key = [
    CACHE_VERSION,
    data.root,
    data.rootReal,
    actor.name,
    actor.trainingDir,
    actor.manifestPath,
    inputs.manifestMd5,
    inputs.promptMd5,
    images,
  ];
  return md5Hex(JSON.stringify(key));
}

/**
 * True when nothing the assessment that made `entry` read has changed since: the same fingerprint, from
 * stats and two small reads (the manifest and prompt_metadata.json, never through a symlink), no parsing.
 * What `sync` asks before it calls an actor unchanged, and what the server asks before it reuses an answer.
 */
export function stillSettled(actor: Actor, data: DataRoot, entry: CacheEntry): boolean {
  return settledState(actor, data, entry) !== undefined;
}

/**
 * What `stillSettled` saw when it said yes, so `unchangedSince` can say "still yes" from stats alone: the
 * paths of the actor, each image's stats, and the manifest's and prompt_metadata.json's stat tokens when
 * they can stand for the bytes that were hashed (`trusted`).
 */
export interface SettledState {
  paths: string;
  /** Set only when both files' tokens can stand for their bytes (see `trustedToken`). */
  trusted?: { manifest: string; prompt: string | null; folder: string | undefined };
  manifestMtimeNs: bigint;
  images: Map<string, { size: bigint; mtimeNs: bigint; ino: bigint }>;
}

/** `stillSettled`, returning what it saw when the entry still stands; undefined otherwise. */
export function settledState(actor: Actor, data: DataRoot, entry: CacheEntry): SettledState | undefined {
  try {
    // The cheap questions first: a run after the manifests changed (a restore, an edit) misses here.
    const listed = imageNames(actor);
    if (listed === undefined || listed.names.length !== entry.images) return undefined;
    const { names } = listed;
    const manifest = readPlainFile(actor.manifestPath, MAX_MANIFEST_BYTES);
    const manifestMd5 = manifest && md5Hex(manifest.bytes);
    if (!manifest || manifestMd5 !== entry.manifestMd5) return undefined;
    // A folder entry's name holds no separator: concatenation is path.join here, without its normalising,
    // which was a tenth of a warm run.
    const dir = actor.trainingDir + sep;
    if (hasLegacy(dir)) return undefined;
    const prompt = readPlainFile(`${dir}prompt_metadata.json`, MAX_JSON_BYTES);
    if (prompt === undefined) return undefined;
    const images: Inputs['images'] = [];
    const seen: SettledState['images'] = new Map();
    for (const filename of names) {
      const stats = lstatSync(dir + filename, { bigint: true });
      // Git's racily-clean rule, as the full assessment applies it: an image not older than the manifest
      // may have changed in the same clock tick as the write that recorded its hash.
      if (!stats.isFile() || stats.mtimeNs >= manifest.mtimeNs) return undefined;
      images.push({ filename, size: Number(stats.size), mtimeNs: stats.mtimeNs.toString(), inode: Number(stats.ino) });
      seen.set(filename, { size: stats.size, mtimeNs: stats.mtimeNs, ino: stats.ino });
    }
    if (
      fingerprintOf(actor, data, { manifestMd5, promptMd5: prompt ? md5Hex(prompt.bytes) : null, images }) !==
      entry.fingerprint
    )
      return undefined;
    const trusted =
      manifest.token !== undefined && (prompt === null || prompt.token !== undefined)
        ? { manifest: manifest.token, prompt: prompt && prompt.token!, folder: listed.token }
        : undefined;
    return { paths: pathsOf(actor), trusted, manifestMtimeNs: manifest.mtimeNs, images: seen };
  } catch {
    return undefined; // vanished or unreadable: the full assessment reports it properly
  }
}

/**
 * True when the actor's files are as `state` saw them: the same image names, each image's size, mtime and
 * inode, no response.json, and the manifest and prompt_metadata.json with their trusted tokens (so the
 * same bytes: see `trustedToken`). Then the fingerprint `state` was checked against still stands. False
 * means only "cannot tell from stats": ask `settledState` again.
 */
export function unchangedSince(actor: Actor, state: SettledState): boolean {
  const { trusted } = state;
  if (trusted === undefined || pathsOf(actor) !== state.paths) return false;
  try {
    const dir = actor.trainingDir + sep;
    // A folder whose trusted token stands has the same entries (any entry made, removed or renamed sets its
    // ctime), so the same image names and still no response.json, nor prompt_metadata.json when it had none:
    // one lstat for a readdir and up to three lstats (a list 72.6 → 65.9 ms at load 9).
    const folder =
      trusted.folder !== undefined &&
      tokenOf(lstatSync(actor.trainingDir, { bigint: true, throwIfNoEntry: false })) === trusted.folder;
    let names: Iterable<string> = state.images.keys();
    if (!folder) {
      const listed = imageNames(actor);
      if (listed === undefined || listed.names.length !== state.images.size || hasLegacy(dir)) return false;
      names = listed.names;
    }
    if (tokenOf(lstatSync(actor.manifestPath, { bigint: true, throwIfNoEntry: false })) !== trusted.manifest)
      return false;
    if (
      (!folder || trusted.prompt !== null) &&
      (tokenOf(lstatSync(`${dir}prompt_metadata.json`, { bigint: true, throwIfNoEntry: false })) ?? null) !==
        trusted.prompt
    )
      return false;
    for (const filename of names) {
      const seen = state.images.get(filename);
      const stats = lstatSync(dir + filename, { bigint: true });
      if (seen === undefined || !stats.isFile() || stats.mtimeNs >= state.manifestMtimeNs) return false;
      if (stats.size !== seen.size || stats.mtimeNs !== seen.mtimeNs || stats.ino !== seen.ino) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** The image names in the actor's training_data; undefined when one is not a plain file (the full path judges it). */
function imageNames(actor: Actor): { names: string[]; token: string | undefined } | undefined {
  const readAtNs = BigInt(Date.now()) * 1_000_000n;
  const folder = lstatSync(actor.trainingDir, { bigint: true, throwIfNoEntry: false });
  if (folder && !folder.isDirectory()) return undefined; // a symlinked folder: the full path judges it
  const names: string[] = [];
  for (const dirent of folder ? readdirSync(actor.trainingDir, { withFileTypes: true }) : []) {
    if (!isImageName(dirent.name)) continue;
    if (!dirent.isFile()) return undefined; // a symlink, folder or FIFO: the full path warns or follows
    names.push(dirent.name);
  }
  return { names, token: folder && trustedToken(folder, readAtNs) };
}

/**
 * Looked up by path, as the full assessment opens them (a folder listing would miss `Response.json` on a
 * volume that ignores case): any response.json is one to retire, as is one a stopped run left aside.
 */
function hasLegacy(dir: string): boolean {
  return (
    lstatSync(`${dir}response.json`, { throwIfNoEntry: false }) !== undefined ||
    lstatSync(dir + RETIRING_NAME, { throwIfNoEntry: false }) !== undefined
  );
}

function pathsOf(actor: Actor): string {
  return `${actor.name}\0${actor.trainingDir}\0${actor.manifestPath}`;
}

function tokenOf(stats: BigIntStats | undefined): string | undefined {
  return stats && `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}:${stats.mode}`;
}

/**
 * A file's stats that stand for the bytes read after taking them, or undefined when they cannot. Any later
 * write, rename over it, `utimes` or chmod sets its ctime to the clock's now, which the file system cannot
 * be told to set back; so a file whose ctime is older than the read by more than a clock tick of any file
 * system (2 s: FAT's) still has those bytes while its token is unchanged. One changed more recently may
 * have changed again in the same tick (git's racily-clean rule): its bytes are read and hashed again.
 * (A list of 289 actors with these tokens 56–65 ms, without 105–162 ms, at load 8.)
 */
function trustedToken(stats: BigIntStats, readAtNs: bigint): string | undefined {
  return stats.ctimeNs < readAtNs - RACY_NS && stats.mtimeNs < readAtNs - RACY_NS ? tokenOf(stats) : undefined;
}

const RACY_NS = 2_000_000_000n;

/**
 * A regular file's bytes and mtime; null when there is no such file; undefined for a symlink, anything but a
 * regular file, a file larger than `maxBytes` (never read: the full assessment refuses it, and a server
 * checking on every request must not read a gigabyte each time), or a file that cannot be read (the full
 * assessment then says why).
 */
function readPlainFile(
  path: string,
  maxBytes: number,
): { bytes: Buffer; mtimeNs: bigint; token: string | undefined } | null | undefined {
  const readAtNs = BigInt(Date.now()) * 1_000_000n;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : undefined;
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile() || stats.size > BigInt(maxBytes)) return undefined;
    return { bytes: readFileSync(fd), mtimeNs: stats.mtimeNs, token: trustedToken(stats, readAtNs) };
  } finally {
    closeSync(fd);
  }
}
