/**
 * Which prefixes to list so that every key asked about is covered with as few LIST requests as possible
 * (SPEC §5, like `rclone check --fast-list`). Pure: keys in, `{ bucket, prefix }` out.
 *
 * - Few actors: each key's folder. A handful of 17-image folders take one request each, and nothing
 *   else in the bucket is read.
 * - Many actors: per bucket and per top-level folder, the longest prefix the keys share, cut back to a
 *   `/`. All 289 system actors under `system_actors/training_data/` become that one prefix (about
 *   5 pages of 1000). Grouping by top-level folder first keeps keys of two layouts (`system_actors/…`
 *   and `<user-uuid>/custom_actor/…`) from widening the shared prefix to the whole bucket.
 */
import { compareBytes, inRange, type KeyRange } from './ranges.js';
import { compareCodeUnits } from '../shared/order.js';

/** Above this many actor folders, shared prefixes are listed instead of each folder. */
export const MANY_ACTORS = 8;

/** One listing: the objects of `bucket` whose key starts with `prefix`, within the key range when it has one. */
export interface Listing extends KeyRange {
  bucket: string;
  prefix: string;
  /** The bucket's region, when a URL's host names it. */
  region?: string;
}

export interface KeyRef {
  bucket: string;
  key: string;
  region?: string;
}

/**
 * Plans the listings that cover `keys`. No planned prefix lies inside another one of the same bucket.
 * @param many list shared prefixes (many actors selected) rather than each key's folder.
 * @example planListings([{ bucket: 'b', key: 'a/x/1.jpg' }, { bucket: 'b', key: 'a/y/2.jpg' }], true) // [{ bucket: 'b', prefix: 'a/' }]
 */
export function planListings(keys: readonly KeyRef[], many: boolean): Listing[] {
  const byBucket = new Map<string, string[]>();
  const regions = new Map<string, string>();
  for (const { bucket, key, region } of keys) {
    let list = byBucket.get(bucket);
    if (!list) byBucket.set(bucket, (list = []));
    list.push(key);
    if (region !== undefined && !regions.has(bucket)) regions.set(bucket, region);
  }
  const listings: Listing[] = [];
  for (const [bucket, bucketKeys] of [...byBucket].sort(([a], [b]) => compareCodeUnits(a, b))) {
    const prefixes = many ? sharedPrefixes(bucketKeys) : bucketKeys.map(folderOf);
    const region = regions.get(bucket);
    for (const prefix of outermost(prefixes))
      listings.push(region === undefined ? { bucket, prefix } : { bucket, prefix, region });
  }
  return listings;
}

/** The listing of `listings` that covers `ref`, if any. */
export function listingFor(listings: readonly Listing[], ref: KeyRef): Listing | undefined {
  return listings.find((listing) => covers(listing, ref));
}

function covers(listing: Listing, ref: KeyRef): boolean {
  return listing.bucket === ref.bucket && ref.key.startsWith(listing.prefix) && inRange(ref.key, listing);
}

/**
 * {@link listingFor} by binary search: planned listings cover disjoint spans of keys (no prefix inside
 * another, ranges that do not overlap), so the only one that may cover a key is the last to start at or
 * before it. A linear search, asked for each of 49 000 keys against 53 ranges, took ~2 s at 2890 actors.
 */
export function listingLookup(listings: readonly Listing[]): (ref: KeyRef) => Listing | undefined {
  const byBucket = new Map<string, { starts: string[]; listings: Listing[] }>();
  const startOf = (listing: Listing) =>
    listing.from !== undefined && compareBytes(listing.from, listing.prefix) > 0 ? listing.from : listing.prefix;
  const sorted = [...listings].sort((a, b) => compareBytes(startOf(a), startOf(b)));
  for (const listing of sorted) {
    let bucket = byBucket.get(listing.bucket);
    if (!bucket) byBucket.set(listing.bucket, (bucket = { starts: [], listings: [] }));
    bucket.starts.push(startOf(listing));
    bucket.listings.push(listing);
  }
  return (ref) => {
    const bucket = byBucket.get(ref.bucket);
    if (!bucket) return undefined;
    let low = 0;
    let high = bucket.starts.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(bucket.starts[middle]!, ref.key) <= 0) low = middle + 1;
      else high = middle;
    }
    const candidate = bucket.listings[low - 1];
    // Listings that overlap (never planned so) are still searched in full.
    return candidate && covers(candidate, ref) ? candidate : listingFor(listings, ref);
  };
}

/**
 * The listing worth starting from one of an actor's keys before the other actors' are known: the folder its
 * actor folder sits in (`system_actors/training_data/` for `system_actors/training_data/0000_x/0000_x_0.jpg`,
 * `<user>/custom_actor/` for `<user>/custom_actor/0000_x/training_data/0000_x_0.png`), which is what
 * {@link planListings} lists when many actors share it. None when no folder of the key is named after the
 * actor, or when that folder is at the top of the bucket (the listing would be the whole bucket).
 * @example earlyListingFor({ bucket: 'b', key: 'a/0000_x/1.jpg' }, '0000_x') // { bucket: 'b', prefix: 'a/' }
 */
export function earlyListingFor(ref: KeyRef, actorName: string): Listing | undefined {
  const at = ref.key.indexOf(`/${actorName}/`);
  if (at <= 0) return undefined;
  const listing: Listing = { bucket: ref.bucket, prefix: ref.key.slice(0, at + 1) };
  if (ref.region !== undefined) listing.region = ref.region;
  return listing;
}

/** `a/b/c.jpg` → `a/b/`; a key without a folder is its own prefix. */
export function folderOf(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash === -1 ? key : key.slice(0, slash + 1);
}

function sharedPrefixes(keys: readonly string[]): string[] {
  const groups = new Map<string, string[]>();
  for (const key of keys) {
    const slash = key.indexOf('/');
    const top = slash === -1 ? key : key.slice(0, slash + 1);
    let group = groups.get(top);
    if (!group) groups.set(top, (group = []));
    group.push(key);
  }
  return [...groups.values()].map((group) => {
    if (group.length === 1) return folderOf(group[0]!);
    const common = commonPrefix(group);
    const slash = common.lastIndexOf('/');
    // Every group key has its top-level folder, so `common` holds a `/` unless the group is one key.
    return slash === -1 ? common : common.slice(0, slash + 1);
  });
}

function commonPrefix(keys: readonly string[]): string {
  let shortest = keys[0]!;
  let longest = keys[0]!;
  for (const key of keys) {
    if (compareCodeUnits(key, shortest) < 0) shortest = key;
    if (compareCodeUnits(key, longest) > 0) longest = key;
  }
  // The first and last keys in sorted order share exactly the prefix that all keys share.
  let length = 0;
  while (length < shortest.length && shortest[length] === longest[length]) length += 1;
  return shortest.slice(0, length);
}

/** Distinct prefixes, without those another one already covers. */
function outermost(prefixes: readonly string[]): string[] {
  const kept: string[] = [];
  for (const prefix of [...new Set(prefixes)].sort(compareCodeUnits)) {
    // Sorted, a covering prefix comes right before what it covers (or before a run of covered ones).
    const last = kept[kept.length - 1];
    if (last === undefined || !prefix.startsWith(last)) kept.push(prefix);
  }
  return kept;
}
