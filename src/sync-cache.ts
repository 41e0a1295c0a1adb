/**
 * What the last sync found settled, so the next one skips actors whose inputs have not moved: this tool's
 * git index. For each actor whose assessment came to "nothing to change", the cache keeps a fingerprint of
 * everything that assessment read (the manifest's and prompt_metadata.json's bytes, which images exist, and
 * each image's stat token) with the statistics it found. A later run recomputes the fingerprint from stats
 * and two small reads in this thread; when it matches, the actor is reported unchanged without parsing,
 * hashing or starting a worker. Anything else, or a cache that is missing, unreadable or of another
 * version, is a miss: the actor is assessed in full, as if there were no cache.
 *
 * Only a fixpoint is recorded: the worker checks that assessing the actor again, once this run's writes are
 * done, would change nothing (assess.ts). And a fingerprint only stands while git's racily-clean rule
 * holds: every image older than the manifest, as the full assessment requires to reuse a hash.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, sep } from 'node:path';
import { z } from 'zod';
import { isImageName, type Actor } from './discover.js';
import { CACHE_VERSION, fingerprintOf, type CacheEntry, type Inputs } from './fingerprint.js';
import { md5Hex } from './hash.js';
import { commitFile, removeStaleTemps } from './manifest/commit.js';
import { OWNED_STATISTICS } from './manifest/schema.js';
import { emptyReport, type ActorReport } from './report.js';
import type { DataRoot } from './root.js';

export type { CacheEntry } from './fingerprint.js';

const StatisticsSchema = z.object(Object.fromEntries(OWNED_STATISTICS.map((key) => [key, z.number()])) as Record<(typeof OWNED_STATISTICS)[number], z.ZodNumber>);

const MD5 = z.string().regex(/^[0-9a-f]{32}$/);

const CacheFileSchema = z.object({
  version: z.literal(CACHE_VERSION),
  actors: z.record(z.string(), z.object({ fingerprint: MD5, manifestMd5: MD5, statistics: StatisticsSchema, images: z.number().int().nonnegative() })),
});

/** The entries of the cache at `path`, by actor name; none when it is missing, unreadable or of another version. */
export function readCache(path: string): Map<string, CacheEntry> {
  try {
    const parsed = CacheFileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return parsed.success ? new Map(Object.entries(parsed.data.actors)) : new Map();
  } catch {
    return new Map(); // a cache is only ever a shortcut: anything wrong with it means "assess in full"
  }
}

/**
 * Replaces the cache at `path` atomically (a torn cache would only be a miss, but nobody should read one),
 * first removing what a run killed while writing it left. Call it holding the run's lock.
 */
export async function writeCache(path: string, entries: ReadonlyMap<string, CacheEntry>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await removeStaleTemps(dirname(path), { owns: (target) => target === basename(path) });
  const actors = Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  await commitFile(path, `${JSON.stringify({ version: CACHE_VERSION, actors })}\n`);
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
    if (!lstatSync(actor.trainingDir).isDirectory()) return undefined; // a symlinked folder: the full path judges it
    const names: string[] = [];
    let prompt = false;
    for (const dirent of readdirSync(actor.trainingDir, { withFileTypes: true })) {
      if (dirent.name === 'response.json') return undefined; // a legacy file to retire
      if (dirent.name === 'prompt_metadata.json') prompt = true;
      else if (!isImageName(dirent.name)) continue;
      else if (!dirent.isFile()) return undefined; // a symlink, folder or FIFO: the full path warns or follows
      else names.push(dirent.name);
    }
    if (names.length !== entry.images) return undefined;
    const manifest = readPlainFile(actor.manifestPath);
    const manifestMd5 = manifest && md5Hex(manifest.bytes);
    if (!manifest || manifestMd5 !== entry.manifestMd5) return undefined;
    const images: Inputs['images'] = [];
    // A folder entry's name holds no separator: concatenation is path.join here, without its normalising,
    // which was a tenth of a warm run.
    const folder = actor.trainingDir + sep;
    for (const filename of names) {
      const stats = lstatSync(folder + filename, { bigint: true });
      // Git's racily-clean rule, as the full assessment applies it: an image not older than the manifest
      // may have changed in the same clock tick as the write that recorded its hash.
      if (!stats.isFile() || stats.mtimeNs >= manifest.mtimeNs) return undefined;
      images.push({ filename, size: Number(stats.size), mtimeNs: stats.mtimeNs.toString(), inode: Number(stats.ino) });
    }
    const promptFile = prompt ? readPlainFile(`${folder}prompt_metadata.json`) : undefined;
    if (prompt && !promptFile) return undefined;
    const fingerprint = fingerprintOf(actor, data, { manifestMd5, promptMd5: promptFile ? md5Hex(promptFile.bytes) : null, images });
    if (fingerprint !== entry.fingerprint) return undefined;
  } catch {
    return undefined; // vanished or unreadable: the full assessment reports it properly
  }
  const report = emptyReport(actor, 'unchanged');
  report.statistics = { ...entry.statistics };
  report.reusedFiles = entry.images;
  return report;
}

/** A regular file's bytes and mtime; undefined for a symlink or anything but a regular file. */
function readPlainFile(path: string): { bytes: Buffer; mtimeNs: bigint } | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile()) return undefined;
    return { bytes: readFileSync(fd), mtimeNs: stats.mtimeNs };
  } finally {
    closeSync(fd);
  }
}
