/**
 * What the last sync found settled, so the next one skips actors whose inputs have not moved: this tool's
 * git index. For each actor whose assessment came to "nothing to change", the cache keeps a fingerprint of
 * everything that assessment read (the manifest's and prompt_metadata.json's bytes, which images exist, and
 * each image's stat token) with the statistics it found. A later run recomputes the fingerprint from stats
 * and two small reads in this thread; when it matches, the actor is reported unchanged without parsing,
 * hashing or starting a worker. Anything else, or a cache that is missing, unreadable, or of another
 * version or build, is a miss: the actor is assessed in full, as if there were no cache.
 *
 * Only a fixpoint is recorded: the worker checks that assessing the actor again, once this run's writes are
 * done, would change nothing (assess.ts). And a fingerprint only stands while git's racily-clean rule
 * holds: every image older than the manifest, as the full assessment requires to reuse a hash.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, sep } from 'node:path';
import * as z from 'zod';
import { isImageName, type Actor } from './discover.js';
import { CACHE_VERSION, fingerprintOf, type CacheEntry, type Inputs } from './fingerprint.js';
import { md5Hex } from './md5/hex.js';
import { commitFile, removeStaleTemps } from './manifest/commit.js';
import { OWNED_STATISTICS } from './manifest/schema.js';
import { workerFile } from './pool-protocol.js';
import { emptyReport, type ActorReport } from './report.js';
import { RETIRING_NAME } from './retire.js';
import type { DataRoot } from './root.js';

export type { CacheEntry } from './fingerprint.js';

const StatisticsSchema = z.object(Object.fromEntries(OWNED_STATISTICS.map((key) => [key, z.number()])) as Record<(typeof OWNED_STATISTICS)[number], z.ZodNumber>);

const MD5 = z.string().regex(/^[0-9a-f]{32}$/);

const CacheFileSchema = z.object({
  version: z.literal(CACHE_VERSION),
  code: z.string(),
  actors: z.record(z.string(), z.object({ fingerprint: MD5, manifestMd5: MD5, statistics: StatisticsSchema, images: z.number().int().nonnegative() })),
});

/**
 * This build of the tool, as the cache records it: the worker bundle's size and mtime (every build writes
 * it). A cache another build wrote is a miss as a whole, so a fix to how actors are assessed reaches every
 * actor at once, with no version number to remember to bump. Undefined when the bundle cannot be found.
 */
export function codeIdentity(): string | undefined {
  const stats = statSync(workerFile(), { throwIfNoEntry: false });
  return stats && `${stats.size}:${stats.mtimeMs}`;
}

/** The entries of the cache at `path`, by actor name; none when it is missing, unreadable, or of another version or build. */
export function readCache(path: string, code = codeIdentity()): Map<string, CacheEntry> {
  try {
    const parsed = CacheFileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return parsed.success && parsed.data.code === code ? new Map(Object.entries(parsed.data.actors)) : new Map();
  } catch {
    return new Map(); // a cache is only ever a shortcut: anything wrong with it means "assess in full"
  }
}

/**
 * Replaces the cache at `path` atomically (a torn cache would only be a miss, but nobody should read one),
 * first removing what a run killed while writing it left (temp files older than `lockTakenMs`, the run
 * lock's `takenMs`). Call it holding the run's lock.
 */
export async function writeCache(path: string, code: string, entries: ReadonlyMap<string, CacheEntry>, lockTakenMs?: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await removeStaleTemps(dirname(path), { owns: (target) => target === basename(path), olderThanMs: lockTakenMs });
  const actors = Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  await commitFile(path, `${JSON.stringify({ version: CACHE_VERSION, code, actors })}\n`);
}

/**
 * The actor's report from its cache entry, when nothing its last assessment read has changed since;
 * undefined when it must be assessed. Reads the manifest and prompt_metadata.json (never through a symlink)
 * and stats the images: no parsing.
 */
export function settledReport(actor: Actor, data: DataRoot, entry: CacheEntry | undefined): ActorReport | undefined {
  if (!entry) return undefined;
  try {
    // The cheap questions first: a run after the manifests changed (a restore, an edit) misses here.
    const folder = lstatSync(actor.trainingDir, { throwIfNoEntry: false });
    if (folder && !folder.isDirectory()) return undefined; // a symlinked folder: the full path judges it
    const names: string[] = [];
    for (const dirent of folder ? readdirSync(actor.trainingDir, { withFileTypes: true }) : []) {
      if (!isImageName(dirent.name)) continue;
      if (!dirent.isFile()) return undefined; // a symlink, folder or FIFO: the full path warns or follows
      names.push(dirent.name);
    }
    if (names.length !== entry.images) return undefined;
    const manifest = readPlainFile(actor.manifestPath);
    const manifestMd5 = manifest && md5Hex(manifest.bytes);
    if (!manifest || manifestMd5 !== entry.manifestMd5) return undefined;
    // A folder entry's name holds no separator: concatenation is path.join here, without its normalising,
    // which was a tenth of a warm run.
    const dir = actor.trainingDir + sep;
    // Looked up by path, as the full assessment opens them (a folder listing would miss `Response.json` on a
    // volume that ignores case): any response.json is one to retire, as is one a stopped run left aside.
    if (lstatSync(`${dir}response.json`, { throwIfNoEntry: false }) || lstatSync(dir + RETIRING_NAME, { throwIfNoEntry: false })) return undefined;
    const prompt = readPlainFile(`${dir}prompt_metadata.json`);
    if (prompt === undefined) return undefined;
    const images: Inputs['images'] = [];
    for (const filename of names) {
      const stats = lstatSync(dir + filename, { bigint: true });
      // Git's racily-clean rule, as the full assessment applies it: an image not older than the manifest
      // may have changed in the same clock tick as the write that recorded its hash.
      if (!stats.isFile() || stats.mtimeNs >= manifest.mtimeNs) return undefined;
      images.push({ filename, size: Number(stats.size), mtimeNs: stats.mtimeNs.toString(), inode: Number(stats.ino) });
    }
    const fingerprint = fingerprintOf(actor, data, { manifestMd5, promptMd5: prompt ? md5Hex(prompt.bytes) : null, images });
    if (fingerprint !== entry.fingerprint) return undefined;
  } catch {
    return undefined; // vanished or unreadable: the full assessment reports it properly
  }
  const report = emptyReport(actor, 'unchanged');
  report.statistics = { ...entry.statistics };
  report.reusedFiles = entry.images;
  return report;
}

/**
 * A regular file's bytes and mtime; null when there is no such file; undefined for a symlink, anything but a
 * regular file, or a file that cannot be read (the full assessment then says why).
 */
function readPlainFile(path: string): { bytes: Buffer; mtimeNs: bigint } | null | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : undefined;
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile()) return undefined;
    return { bytes: readFileSync(fd), mtimeNs: stats.mtimeNs };
  } finally {
    closeSync(fd);
  }
}
