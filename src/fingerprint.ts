/**
 * The fingerprint of what one actor's assessment reads (see sync-cache.ts): computed by the worker from
 * what it read and hashed, and by a later run from stats and two small reads; equal fingerprints, equal
 * assessments. Kept apart from the cache file so the worker threads load only this.
 */
import type { Actor } from './discover.js';
import { md5Hex } from './md5/hex.js';
import type { TrainingStatistics } from './manifest/schema.js';
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

/** The fingerprint of an actor's inputs: with settledReport's checks (racily clean, no response.json, no symlinks), equal fingerprints, equal assessments. */
export function fingerprintOf(actor: Actor, data: DataRoot, inputs: Inputs): string {
  const images = [...inputs.images].sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0)).map((i) => [i.filename, i.size, i.mtimeNs, i.inode]);
  const key = [CACHE_VERSION, data.root, data.rootReal, actor.name, actor.trainingDir, actor.manifestPath, inputs.manifestMd5, inputs.promptMd5, images];
  return md5Hex(JSON.stringify(key));
}
