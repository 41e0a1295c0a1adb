/**
 * Range listing: the keys wanted under one shared prefix are known before the listing starts, so the
 * prefix is cut at folder boundaries into disjoint key ranges that are listed at once, each sized to end
 * within about one page. On a link with 40 ms a request, 50 pages in a row become 4 rounds of 16.
 * S3 lists keys in UTF-8 byte order, not JavaScript's UTF-16 order, so ranges are cut and compared in bytes.
 */

/** Keys `k` with `from ≤ k < before` in UTF-8 byte order; an absent bound is open. */
export interface KeyRange {
  from?: string;
  before?: string;
}

/** Wanted keys per range: a 1000-key page, less room for keys nobody asked about. */
export const RANGE_KEYS = 950;

/**
 * Cuts the keys' span into ranges that hold every one of `keys` exactly once, each up to `perRange` of them,
 * never splitting a folder: the first starts at the first folder, the last ends after the last one.
 * `spread`: how many keys the listing holds for each wanted one (4 for one shard of 4), so that a range
 * still ends within about a page.
 * @example splitIntoRanges(['a/x/1', 'a/x/2', 'a/y/1'], 1, 2) // [{ from: 'a/x/', before: 'a/y/' }, { from: 'a/y/', before: 'a/y0' }]
 */
export function splitIntoRanges(keys: readonly string[], spread = 1, perRange = RANGE_KEYS): KeyRange[] {
  return rangesOver(outerFolders(keys), spread, perRange);
}

/**
 * `listing` as range listings when that takes fewer requests than listing each folder (about one request a
 * range, one a folder), else as its folders. A listing of one folder stays as it is.
 * `beside`: folders of keys nobody here asks about, with about how many keys each holds (the other shards'
 * actors): ranges are then cut where all keys fill a page, and a range that holds none of `keys` is not listed.
 * Dropping it loses no key: ranges never split a folder, so each key's folder, and the key, is in a range that
 * holds that folder.
 */
export function rangeListings<L extends { prefix: string }>(
  listing: L,
  keys: readonly string[],
  spread = 1,
  beside: ReadonlyArray<readonly [string, number]> = [],
): Array<L & KeyRange> {
  const folders = outerFolders(keys);
  if (folders.length <= 1) return [listing];
  const ranges =
    beside.length === 0
      ? rangesOver(folders, spread, RANGE_KEYS)
      : rangesOver(outerFolders(keys, beside), 1, RANGE_KEYS).filter((range) =>
          folders.some(([folder]) => inRange(folder, range)),
        );
  if (ranges.length >= folders.length) return folders.map(([prefix]) => ({ ...listing, prefix }));
  return ranges.map((range) => ({ ...listing, ...range }));
}

/**
 * The keys' folders (and those `beside`, with their counts) in byte order with their key counts, each folder
 * inside another one (`a/x/sub/` in `a/x/`) counted in it: a range must not end at a nested folder's end while
 * keys of its outer folder (`a/x/z.jpg`) sort after it, and one listing of the outer folder covers both.
 */
function outerFolders(
  keys: readonly string[],
  beside: ReadonlyArray<readonly [string, number]> = [],
): [string, number][] {
  const counts = new Map<string, number>(beside);
  for (const key of keys) counts.set(folderOf(key), (counts.get(folderOf(key)) ?? 0) + 1);
  const kept: [string, number][] = [];
  for (const [folder, count] of [...counts].sort(([a], [b]) => compareBytes(a, b))) {
    const last = kept[kept.length - 1];
    // Only a folder holds others: a key without one (`a`) is no folder of `ab/`.
    if (last?.[0].endsWith('/') && folder.startsWith(last[0])) last[1] += count;
    else kept.push([folder, count]);
  }
  return kept;
}

/** Ranges over sorted outer folders, each holding up to `perRange / spread` keys unless one folder holds more. */
function rangesOver(folders: [string, number][], spread: number, perRange: number): KeyRange[] {
  const limit = Math.max(1, Math.floor(perRange / Math.max(1, spread)));
  const ranges: KeyRange[] = [];
  let held = 0;
  for (const [folder, count] of folders) {
    if (ranges.length === 0 || held + count > limit) {
      if (ranges.length > 0) ranges[ranges.length - 1]!.before = folder;
      ranges.push({ from: folder });
      held = 0;
    }
    held += count;
  }
  if (ranges.length > 0) ranges[ranges.length - 1]!.before = prefixEnd(folders[folders.length - 1]![0]);
  return ranges;
}

/** The least string after every key that starts with `folder`, in byte order. */
function prefixEnd(folder: string): string {
  // `a/x/` → `a/x0`: '0' is the byte after '/'. A key without a folder is its own: only itself is before.
  return folder.endsWith('/') ? `${folder.slice(0, -1)}0` : `${folder}\u0000`;
}

/** The `StartAfter` that makes a listing begin at `range.from`: every key at or after it sorts after this. */
export function startAfterOf(range: KeyRange): string | undefined {
  // A proper prefix of `from` sorts before it, and so before every key at or after it.
  return range.from === undefined || range.from === '' ? undefined : range.from.slice(0, -1);
}

export function inRange(key: string, range: KeyRange): boolean {
  return (range.from === undefined || compareBytes(key, range.from) >= 0) && !isPast(key, range);
}

/** True once a listing has reached the end of `range`: no later key can be in it. */
export function isPast(key: string, range: KeyRange): boolean {
  return range.before !== undefined && compareBytes(key, range.before) >= 0;
}

/** `a/b/c.jpg` → `a/b/`; a key without a folder is its own folder. */
function folderOf(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash === -1 ? key : key.slice(0, slash + 1);
}

/**
 * UTF-8 byte order, as S3 lists keys, without encoding either string: it is asked once per key and range
 * (at 2890 actors, millions of times; two Buffers each took ~1 s). UTF-16 units sort as UTF-8 bytes except
 * that a surrogate (a character past U+FFFF) must sort after U+E000–U+FFFF. When either string has no unit
 * from U+D800 up (every ASCII key), the first that differs ranks alike in both orders, so the engine's own
 * comparison answers (scale 10, profiled: the lookups 0.29 → 0.04 s).
 */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  if (!UNITS_OUT_OF_ORDER.test(a) || !UNITS_OUT_OF_ORDER.test(b)) return a < b ? -1 : 1;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

/** The units whose UTF-16 order is not their UTF-8 order against each other: surrogates and U+E000–U+FFFF. */
const UNITS_OUT_OF_ORDER = /[\uD800-\uFFFF]/;

function utf8Rank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}
