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
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import * as z from 'zod';
import type { RemoteFact } from '../shared/classify.js';
import type { Actor } from '../engine/discover.js';
import { CACHE_VERSION, stillSettled, type CacheEntry } from './fingerprint.js';
import { commitFile, removeStaleTemps } from '../manifest/commit.js';
import { OWNED_STATISTICS } from '../manifest/schema.js';
import { workerFile } from '../shared/pool-protocol.js';
import { emptyReport, type ActorReport } from '../engine/report.js';
import type { DataRoot } from '../engine/root.js';
import { compareCodeUnits } from '../shared/order.js';
import { md5Hex } from '../md5/hex.js';

export type { CacheEntry } from './fingerprint.js';

const StatisticsSchema = z.object(
  Object.fromEntries(OWNED_STATISTICS.map((key) => [key, z.number()])) as Record<
    (typeof OWNED_STATISTICS)[number],
    z.ZodNumber
  >,
);

const MD5 = z.string().regex(/^[0-9a-f]{32}$/);

const CacheFileSchema = z.object({
  version: z.literal(CACHE_VERSION),
  code: z.string(),
  actors: z.record(
    z.string(),
    z.object({
      fingerprint: MD5,
      manifestMd5: MD5,
      statistics: StatisticsSchema,
      images: z.number().int().nonnegative(),
      remote: z.record(z.string(), z.string().nullable()).optional(),
    }),
  ),
});

/**
 * This build of the tool, as the cache records it: the MD5 of the worker's entry, which names each chunk it
 * loads by a hash of the chunk's content (and so of theirs). Not its size and mtime: npm gives every packed
 * file one fixed mtime, and an entry that only names other chunks keeps its size. A cache another build wrote
 * is a miss as a whole, so a fix to how actors are assessed reaches every actor at once, with no version
 * number to remember to bump. Undefined when the entry cannot be read.
 */
export function codeIdentity(entry = workerFile()): string | undefined {
  try {
    return md5Hex(readFileSync(entry));
  } catch {
    return undefined;
  }
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
export async function writeCache(
  path: string,
  code: string,
  entries: ReadonlyMap<string, CacheEntry>,
  lockTakenMs?: number,
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await removeStaleTemps(dirname(path), { owns: (target) => target === basename(path), olderThanMs: lockTakenMs });
  const actors = Object.fromEntries([...entries].sort(([a], [b]) => compareCodeUnits(a, b)));
  await commitFile(path, `${JSON.stringify({ version: CACHE_VERSION, code, actors })}\n`);
}

/**
 * The actor's report from its cache entry, when nothing its last assessment read has changed since
 * (`stillSettled`); undefined when it must be assessed.
 */
export function settledReport(actor: Actor, data: DataRoot, entry: CacheEntry | undefined): ActorReport | undefined {
  if (!entry || !stillSettled(actor, data, entry)) return undefined;
  return cachedReport(actor, entry);
}

/**
 * For `--remote`: the URLs of the actor's cache entry, when nothing local changed since (`stillSettled`) and
 * the entry knows what S3 held at each; the run lists them instead of reading them from the actor's files.
 */
export function remotelySettleable(actor: Actor, data: DataRoot, entry: CacheEntry | undefined): string[] | undefined {
  return entry?.remote && stillSettled(actor, data, entry) ? Object.keys(entry.remote) : undefined;
}

/**
 * The actor's report from its entry when the listing found each of its URLs as the entry recorded it (the
 * same ETag, or still no object): assessing it again would change nothing. Else undefined: any object
 * added, removed, replaced or not checkable sends the actor to a full assessment, which reports it.
 */
export function remotelySettled(
  actor: Actor,
  entry: CacheEntry,
  facts: ReadonlyMap<string, RemoteFact & { error?: string; key?: string }>,
): ActorReport | undefined {
  for (const [url, etag] of Object.entries(entry.remote ?? {})) {
    const fact = facts.get(url);
    if (
      !fact ||
      fact.error !== undefined ||
      fact.key !== undefined ||
      fact.exists !== (etag !== null) ||
      (etag !== null && fact.etag !== etag)
    )
      return undefined;
  }
  return entry.remote ? cachedReport(actor, entry) : undefined;
}

function cachedReport(actor: Actor, entry: CacheEntry): ActorReport {
  const report = emptyReport(actor, 'unchanged');
  report.statistics = { ...entry.statistics };
  report.reusedFiles = entry.images;
  return report;
}
