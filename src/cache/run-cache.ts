/** The sync cache (sync-cache.ts) as one run uses it: the entries that may settle actors now, and those it will leave. */
import { realpath } from 'node:fs/promises';
import type { Assessment } from '../../workers/assess.js';
import { cachePath, newerThanManifests } from './path.js';
import { messageOf, type ActorFailure } from '../errors.js';
import type { RunLock } from '../lock/lock.js';
import { sameJson } from '../manifest/merge.js';
import type { ActorReport } from '../engine/report.js';
import type { DataRoot } from '../engine/root.js';
import type { Shard } from '../engine/shard.js';
import { codeIdentity, readCache, writeCache, type CacheEntry } from './sync-cache.js';

export interface RunCache {
  path: string;
  /** This build (codeIdentity): written into the cache, and a cache of another build is not read. */
  code: string;
  /** None with --verify, remote findings or push/pull transfers: those look at every actor afresh (and still record what they find). */
  usable: ReadonlyMap<string, CacheEntry>;
  /** A plain --remote run's entries (no --verify, no transfers): each settles its actor once S3's listing agrees with it. */
  byListing: ReadonlyMap<string, CacheEntry>;
  /** Written after every manifest's last change (at the run's start). */
  freshAtStart: boolean;
  /** Usable entries, and the cache fresh: most actors will likely be settled. */
  likelySettles: boolean;
  read: ReadonlyMap<string, CacheEntry>;
  next: Map<string, CacheEntry>;
}

/**
 * The run's cache, keyed by the manifests folder's real path; none while that folder is missing. `remoteOnly`:
 * a `--remote` run without --verify or transfers, which settles only entries that know what S3 held.
 */
export async function openCache(
  data: DataRoot,
  shard: Shard | undefined,
  lookAfresh: boolean,
  remoteOnly = false,
): Promise<RunCache | undefined> {
  const real = await realpath(data.manifestsDir).catch(() => undefined);
  if (real === undefined) return undefined;
  const code = codeIdentity();
  if (code === undefined) return undefined;
  const path = cachePath(real, shard);
  const read = readCache(path, code);
  const usable = lookAfresh ? new Map<string, CacheEntry>() : read;
  const freshAtStart = newerThanManifests(path, real);
  const byListing = remoteOnly ? read : new Map<string, CacheEntry>();
  const settling = remoteOnly ? [...read.values()].some((entry) => entry.remote) : usable.size > 0;
  const likelySettles = settling && freshAtStart;
  return { path, code, usable, byListing, freshAtStart, likelySettles, read, next: new Map(read) };
}

/**
 * Keeps the actor's cache entry when it came to rest: committed (or unchanged) and its response.json, if it
 * had one, retired. Any other outcome drops it, so the next run assesses the actor in full.
 */
export function recordSettled(cache: RunCache, { settled, legacy }: Assessment, report: ActorReport): void {
  const atRest =
    settled &&
    report.errors.length === 0 &&
    report.warnings.length === 0 &&
    (legacy === undefined || report.legacy === 'retired');
  if (atRest) cache.next.set(report.name, settled);
  else cache.next.delete(report.name);
}

/**
 * Written when its entries changed, and also when a manifest changed since it was (before this run: a chmod;
 * or by it: a commit of an actor it keeps no entry for), so the next run's guess at the entry sees it fresh.
 * Not by a run that lost its lock: the run that took over writes its own. A failure is a warning.
 */
export async function saveCache(
  cache: RunCache,
  reports: ActorReport[],
  lock: RunLock | undefined,
  warnings: ActorFailure[],
): Promise<void> {
  const committed = reports.some((report) => report.manifest === 'written' || report.manifest === 'created');
  if (lock?.compromised || (sameCache(cache.read, cache.next) && cache.freshAtStart && !committed)) return;
  await writeCache(cache.path, cache.code, cache.next, lock?.takenMs).catch((error: unknown) => {
    warnings.push({
      actor: '',
      file: cache.path,
      reason: `could not be written (${messageOf(error)}); the next run assesses every actor in full`,
    });
  });
}

/** Equal entries, every field (a damaged field under a matching fingerprint is rewritten, not kept forever). */
function sameCache(a: ReadonlyMap<string, CacheEntry>, b: ReadonlyMap<string, CacheEntry>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, entry] of a) if (!sameJson(entry, b.get(name))) return false;
  return true;
}
