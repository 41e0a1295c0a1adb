/**
 * The pure core of `sync`: plain facts in (local files with their hashes, the manifest's entries, the
 * URLs of the legacy files), `training_data` entries and statistics out. No I/O, so every rule of
 * SPEC §3 is tested with plain arrays; `sync`, `status`, `check` and `serve` all call this one function.
 */
import type { Status, TrainingEntry, TrainingStatistics } from '../manifest/schema.js';
import { sameObject } from './s3-url.js';
import { compareCodeUnits } from './order.js';

/** A local image as the worker saw it. */
export interface LocalFile {
  filename: string;
  /** Relative to the data root, with `/` separators. */
  localPath: string;
  size: number;
  mtimeNs: string;
  inode: number;
  md5: string;
}

/** What a remote check (or this tool's own transfer) found at an entry's URL. */
export interface RemoteFact {
  exists: boolean;
  md5: string | null;
  /** The object's ETag, recorded as `s3_etag`. */
  etag?: string;
  /** When S3 was asked, recorded as `s3_checked_at`. */
  checkedAt?: string;
  /** The object's full-object CRC64NVME checksum (base64), recorded as `s3_crc64nvme`. */
  crc64nvme?: string;
}

export interface ClassifyInput {
  local: readonly LocalFile[];
  previous: readonly TrainingEntry[];
  /** filename → URL from `response.json` (retired after the commit, so every one must land in an entry). */
  legacyUrls: ReadonlyMap<string, string>;
  /** filename → URL from `prompt_metadata.json` (kept on disk; lowest precedence). */
  promptUrls: ReadonlyMap<string, string>;
  /** url → what S3 holds there, when a remote check ran. */
  remote?: ReadonlyMap<string, RemoteFact>;
  /** filename → URL this run gave an image (push: where it was just uploaded); wins over every other source. */
  assignedUrls?: ReadonlyMap<string, string>;
}

/** A fact that stops the actor from being committed: the reason names the values (the caller says what to do). */
export interface Conflict {
  filename: string;
  reason: string;
}

export interface ClassifyResult {
  entries: TrainingEntry[];
  statistics: TrainingStatistics;
  conflicts: Conflict[];
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' });

/** Natural order (`_2` before `_10`), total: names the collator calls equal fall back to code points. */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || compareCodeUnits(a, b);
}

/** MiB with two decimals, as the studio's manifests write sizes. */
export function toMb(bytes: number): number {
  return Math.round((bytes / 1048576) * 100) / 100;
}

/** Decides one image's status from what is known locally and remotely (SPEC §3). */
export function statusOf(
  local: boolean,
  url: string | null,
  s3Exists: boolean,
  md5: string | null,
  s3Md5: string | null,
): Status | null {
  const remote = url !== null && s3Exists;
  if (local && remote) return md5 === s3Md5 ? 'synced' : 'out_of_sync';
  if (local) return 'local_only';
  if (url === null) return null;
  return s3Exists ? 's3_only' : 'missing';
}

/**
 * Merges every source of one actor into its `training_data` entries (sorted naturally) and the owned
 * statistics. URL precedence: the manifest, then `response.json`, then `prompt_metadata.json`; a
 * `response.json` URL that disagrees with the manifest is a conflict, because retiring the file would
 * lose it.
 */
export function classify(input: ClassifyInput): ClassifyResult {
  const local = new Map(input.local.map((file) => [file.filename, file]));
  const previous = new Map(input.previous.map((entry) => [entry.filename, entry]));
  const names = new Set<string>([
    ...local.keys(),
    ...previous.keys(),
    ...input.legacyUrls.keys(),
    ...input.promptUrls.keys(),
  ]);
  const conflicts: Conflict[] = [];
  const entries: TrainingEntry[] = [];

  for (const filename of [...names].sort(naturalCompare)) {
    const file = local.get(filename);
    const before = previous.get(filename);
    const legacyUrl = input.legacyUrls.get(filename);
    // An empty URL is no URL (SPEC §3): such an entry is local_only, and push gives it one.
    const knownUrl = before?.s3_url || null;
    // By bucket and key: response.json may name the manifest's object in another form (s3://), kept as the manifest has it.
    if (knownUrl !== null && legacyUrl !== undefined && !sameObject(legacyUrl, knownUrl)) {
      conflicts.push({ filename, reason: `response.json gives ${legacyUrl} but the manifest has ${knownUrl}` });
      continue;
    }
    const url = input.assignedUrls?.get(filename) ?? knownUrl ?? legacyUrl ?? (input.promptUrls.get(filename) || null);
    const sameUrl = url !== null && url === knownUrl;
    const remote = url === null ? undefined : input.remote?.get(url);

    const s3Exists = remote ? remote.exists : sameUrl ? before?.s3_exists !== false : true;
    // The MD5 of the S3 object as last known. A URL whose s3_md5 was never recorded (new to the manifest,
    // or an entry another tool wrote without one), taken without asking S3, gets the legacy behaviour
    // (SPEC §3): the uploaded file is assumed to be the local one, which a remote check later confirms or
    // corrects. A recorded s3_md5 stands, null (unknown) included: an s3_only image whose file appeared, or
    // an object a remote check could not verify, is never assumed synced.
    const recorded = sameUrl && before?.s3_md5 !== undefined;
    let s3Md5: string | null = remote ? remote.md5 : recorded ? (before?.s3_md5 ?? null) : null;
    if (url !== null && !remote && !recorded && s3Exists && file) s3Md5 = file.md5;

    const status = statusOf(file !== undefined, url, s3Exists, file?.md5 ?? null, s3Md5);
    if (status === null) continue; // neither a local file nor a URL: nothing left to track

    const entry = entryFor(filename, file, url, s3Md5, s3Exists, status, before);
    if (remote) {
      // A fresh finding replaces the last one; a finding without an ETag (a download) keeps the known one
      // unless the object is gone.
      if (remote.etag !== undefined) entry.s3_etag = remote.etag;
      else if (!remote.exists || !sameUrl) delete entry.s3_etag;
      // A checksum goes with the object it was read from: one that changed (another ETag) drops it.
      if (remote.crc64nvme !== undefined) entry.s3_crc64nvme = remote.crc64nvme;
      else if (!remote.exists || !sameUrl || (remote.etag !== undefined && remote.etag !== before?.s3_etag))
        delete entry.s3_crc64nvme;
      if (remote.checkedAt !== undefined) entry.s3_checked_at = remote.checkedAt;
    }
    entries.push(entry);
  }
  markDuplicates(entries);
  return { entries, statistics: statisticsOf(entries), conflicts };
}

function entryFor(
  filename: string,
  file: LocalFile | undefined,
  url: string | null,
  s3Md5: string | null,
  s3Exists: boolean,
  status: Status,
  before: TrainingEntry | undefined,
): TrainingEntry {
  const mtimeMs = file ? Number(BigInt(file.mtimeNs) / 1_000_000n) : null;
  const entry: TrainingEntry = {
    filename,
    local_path: file?.localPath ?? null,
    size_bytes: file?.size ?? null,
    size_mb: file ? toMb(file.size) : null,
    modified_timestamp: mtimeMs === null ? null : mtimeMs / 1000,
    modified_date: mtimeMs === null ? null : new Date(mtimeMs).toISOString(),
    md5_hash: file?.md5 ?? null,
    s3_url: url,
    s3_md5: s3Md5,
  };
  if (!s3Exists) entry.s3_exists = false;
  entry.status = status;
  entry.mtime_ns = file?.mtimeNs ?? null;
  entry.inode = file?.inode ?? null;
  // Keys another tool added to an entry are kept; the ones recomputed here are not.
  // Defined, not assigned: a key named `__proto__` would otherwise set the prototype and be lost.
  for (const [key, value] of Object.entries(before ?? {})) {
    if (!Object.hasOwn(entry, key) && !RECOMPUTED.has(key))
      Object.defineProperty(entry, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return entry;
}

const RECOMPUTED = new Set(['s3_exists', 'duplicate_of']);

/** Marks every image whose MD5 another image of the actor already has; the one with a URL (else the first) is the original. */
function markDuplicates(entries: TrainingEntry[]): void {
  const originals = new Map<string, TrainingEntry>();
  const withUrlFirst = [...entries].sort((a, b) => Number(a.s3_url == null) - Number(b.s3_url == null));
  for (const entry of withUrlFirst) {
    if (!entry.md5_hash) continue;
    const original = originals.get(entry.md5_hash);
    if (original) entry.duplicate_of = original.filename;
    else originals.set(entry.md5_hash, entry);
  }
}

/** The owned statistics of SPEC §3, derived from the entries. */
export function statisticsOf(entries: readonly TrainingEntry[]): TrainingStatistics {
  const count = (status: Status) => entries.filter((entry) => entry.status === status).length;
  const bytes = entries.reduce((sum, entry) => sum + (entry.size_bytes ?? 0), 0);
  return {
    training_images_count: entries.length,
    training_synced_count: count('synced'),
    training_local_only_count: count('local_only'),
    training_s3_only_count: count('s3_only'),
    training_out_of_sync_count: count('out_of_sync'),
    training_missing_count: count('missing'),
    training_data_size_bytes: bytes,
    training_data_size_mb: toMb(bytes),
  };
}
