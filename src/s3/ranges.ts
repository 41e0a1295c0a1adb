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
 * Cuts the key space into ranges that hold every one of `keys` exactly once, each up to `perRange` of them,
 * never splitting a folder. `spread`: how many keys the listing holds for each wanted one (4 for one shard
 * of 4), so that a range still ends within about a page. Empty for no keys; one open range for one group.
 * @example splitIntoRanges(['a/x/1', 'a/x/2', 'a/y/1'], 1, 2) // [{ before: 'a/y/' }, { from: 'a/y/' }]
 */
export function splitIntoRanges(keys: readonly string[], spread = 1, perRange = RANGE_KEYS): KeyRange[] {
  const folders = new Map<string, number>();
  for (const key of keys) folders.set(folderOf(key), (folders.get(folderOf(key)) ?? 0) + 1);
  const sorted = [...folders].sort(([a], [b]) => compareBytes(a, b));
  const limit = Math.max(1, Math.floor(perRange / Math.max(1, spread)));
  const starts: string[] = [];
  let held = 0;
  for (const [folder, count] of sorted) {
    if (held > 0 && held + count > limit) {
      starts.push(folder);
      held = 0;
    }
    held += count;
  }
  if (sorted.length === 0) return [];
  return [undefined, ...starts].map((from, i) => ({ ...(from !== undefined && { from }), ...(starts[i] !== undefined && { before: starts[i] }) }));
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

/** UTF-8 byte order, as S3 lists keys. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
