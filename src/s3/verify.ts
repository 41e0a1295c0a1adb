/**
 * `--remote` verification (SPEC §5): what S3 holds at each URL, found by listing (ListObjectsV2, 1000 keys
 * a page) rather than one HEAD per image. A listed ETag is taken for the MD5 only provisionally: S3 gives
 * SSE-KMS, DSSE-KMS and SSE-C objects an ETag that is not the MD5, and a listing does not say which objects
 * those are. So a fact read from a listing is marked `fromListing`, and the assessment (which knows the local
 * file and what the manifest recorded) asks for a HEAD ({@link confirmUrls}) before it calls an image out of
 * sync. The HEAD reads the encryption, the MD5 this tool stores in the metadata, and the full-object
 * CRC64NVME checksum (`ChecksumMode: ENABLED`).
 */
import type { RemoteFact } from '../shared/classify.js';
import { UsageError } from '../errors.js';
import { keyCandidates, type S3Location } from '../shared/s3-url.js';
import type { S3Access } from './client.js';
import { fullObjectCrc64 } from './checksum.js';
import { etagHidesMd5, md5OfEtag, md5OfObjectEtag, normalizeEtag, storedMd5 } from './etag.js';
import { listAll, PAGE_SIZE, startListing, type EarlyListing } from './list.js';
import { listingLookup, MANY_ACTORS, planListings, type KeyRef, type Listing } from './prefixes.js';
import { rangeListings } from './ranges.js';
import { S3 } from './sdk.js';

/** What one URL's check found. */
export interface RemoteObjectFact extends RemoteFact {
  /** The object's ETag without quotes, when it exists. */
  etag?: string;
  size?: number;
  /** When S3 was asked (ISO 8601): the start of the listing that covered it, or of its HEAD. */
  checkedAt: string;
  /**
   * False when S3 could not say whether the object matches: a multipart ETag without a stored MD5, or a
   * listing that failed (`error`). Then `md5` is null and the image must not be called out of sync (nor
   * synced): keep what the manifest knew, or compare the ETag with `etagMatches` and the local file.
   */
  verifiable: boolean;
  /** Why the check failed (after retries), naming the listing or object: report it for the image. */
  error?: string;
  /** The key S3 holds, when it is another spelling of the URL's (`+` read as a space, another Unicode form). */
  key?: string;
  /**
   * The MD5 (or its absence) was read from a listed ETag, which an encrypted object's is not: confirm it with
   * {@link confirmUrls} before calling the image out of sync. Unset on facts a HEAD made.
   */
  fromListing?: boolean;
  /** The full-object CRC64NVME checksum a HEAD returned (base64), to compare with the local file's. */
  crc64nvme?: string;
  /** Why the object cannot be verified (for the warning), when a HEAD found neither an MD5 nor a checksum. */
  unverifiable?: string;
}

export interface VerifyOptions {
  /** How many actor folders the run selected; above {@link MANY_ACTORS}, shared prefixes are listed. Default: the distinct key folders. */
  actorFolders?: number;
  /**
   * How many keys a shared prefix holds for each one asked about, about (the actors of all shards for those
   * of this one: 4 for `--shard K/4`), so that each range listing still ends within about a page. Default 1.
   */
  spread?: number;
  /**
   * Folders beside the run's own in S3 that it does not ask about (the other shards' actors), each with about
   * how many keys it holds: a shared prefix's ranges are cut where all keys fill a page, not by `spread`.
   */
  beside?: readonly BesideFolder[];
  /**
   * Listings started before the URLs were known ({@link startVerifying}, or `startListing` of a prefix): each
   * that the plan holds serves it (an unbounded one, the prefix's first range); the rest are stopped at once
   * and what they found dropped. The plan keeps their ranges when they can take over every key ({@link takesOver}).
   */
  early?: readonly EarlyListing[];
  /** Told once per call when a listing is denied (no `s3:ListBucket`) and its URLs are checked by HEAD instead. */
  onWarning?: (file: string, reason: string) => void;
  /**
   * Send no HEAD: an object whose listed ETag is no MD5 gets a fact with `md5: null` and `fromListing`, for
   * the caller to confirm with {@link confirmUrls} when what the manifest recorded does not settle it.
   * Default false: such objects are HEADed here.
   */
  deferHeads?: boolean;
}

export interface BesideFolder {
  bucket: string;
  /** `system_actors/training_data/0001_x/` */
  folder: string;
  /** About how many keys it holds (an estimate, maybe fractional): it moves where ranges are cut, nothing else. */
  keys: number;
}

interface Listed {
  etag: string;
  size: number | undefined;
  checkedAt: string;
}

/**
 * Checks every location and returns one fact per URL (`{ exists: false, md5: null }` when no object is
 * there). Keys are compared decoded, so URLs that spell one key differently share one fact.
 * @throws {UsageError} when S3 cannot be reached or rejects the credentials: no URL could be checked.
 * @example const facts = await verifyUrls(s3, urls.map(parseS3Url), { actorFolders: 289 }); // ≈ 5 LIST requests
 */
export async function verifyUrls(
  s3: S3Access,
  locations: readonly S3Location[],
  options: VerifyOptions = {},
): Promise<Map<string, RemoteObjectFact>> {
  const plan = plannedBefore(options.early, locations, options) ?? planVerify(locations, options);
  const listed = await listEach(s3, plan.listings, plan.wanted, options.early ?? []);
  return await factsOf(s3, plan, listed, options);
}

/**
 * Starts now the listings {@link verifyUrls} would plan for `locations` (the URLs a cache recorded, before it
 * is known which still hold), for `verifyUrls` to take as `early` with the URLs it is then given.
 */
export function startVerifying(
  s3: S3Access,
  locations: readonly S3Location[],
  options: VerifyOptions = {},
): EarlyListing[] {
  const plan = planVerify(locations, options);
  const early = plan.listings.map((listing) => startListing(s3, listing));
  plans.set(early, plan);
  return early;
}

/** The plan each {@link startVerifying} made: given the same locations (every night, nearly always), not made again (scale 10, profiled: the second plan took 0.29 s). */
const plans = new WeakMap<readonly EarlyListing[], Plan>();

function plannedBefore(
  early: readonly EarlyListing[] | undefined,
  locations: readonly S3Location[],
  options: VerifyOptions,
): Plan | undefined {
  const plan = early && plans.get(early);
  if (!plan) return undefined;
  const same =
    plan.options.actorFolders === options.actorFolders &&
    plan.options.spread === options.spread &&
    plan.options.beside === options.beside &&
    plan.locations.length === locations.length &&
    plan.locations.every((l, i) => l === locations[i]);
  return same ? plan : undefined;
}

/** The listings that cover every spelling of the locations' keys, the keys wanted from each, and where each spelling is listed. */
interface Plan {
  locations: readonly S3Location[];
  /** What it was planned with: another run's options need a plan of their own. */
  options: Pick<VerifyOptions, 'actorFolders' | 'spread' | 'beside'>;
  listings: Listing[];
  wanted: Map<Listing, Set<string>>;
  /** For each location (same index), every spelling S3 may hold its key in, and the listing that covers it. */
  spellings: Spelling[][];
}

interface Spelling {
  key: string;
  listing: Listing;
}

/** What each listing found, and which listings failed or were denied. */
interface Listings {
  listings: Listing[];
  /** `${bucket}/${key}` → what the listing said. */
  found: Map<string, Listed>;
  started: Map<Listing, string>;
  failed: Map<Listing, string>;
  denied: Set<Listing>;
}

/** The listings for `locations`: a folder each for a few actors, key ranges of their shared prefix for many. */
function planVerify(locations: readonly S3Location[], options: VerifyOptions): Plan {
  const folders =
    options.actorFolders ??
    new Set(locations.map((l) => `${l.bucket}/${l.key.slice(0, l.key.lastIndexOf('/') + 1)}`)).size;
  // Every spelling S3 may hold a URL's key in is listed for; the listing says which one exists.
  const candidates = locations.map((l) => keyCandidates(l));
  const refs = locations.flatMap((l, i) => candidates[i]!.map((key) => ({ bucket: l.bucket, key, region: l.region })));
  const shared = folders > MANY_ACTORS;
  const planned = planListings(refs, shared);
  // A shared prefix is listed as key ranges at once, not page after page (ranges.ts).
  const started = (options.early ?? []).map((early) => early.listing);
  const listings = shared ? planned.flatMap(rangesOf(planned, refs, options, started)) : planned;
  const lookup = listingLookup(listings);
  const wanted = new Map<Listing, Set<string>>(listings.map((listing) => [listing, new Set<string>()]));
  const spellings = locations.map((l, i) =>
    candidates[i]!.map((key) => {
      const listing = lookup({ bucket: l.bucket, key })!;
      wanted.get(listing)!.add(key);
      return { key, listing };
    }),
  );
  return {
    locations,
    options: { actorFolders: options.actorFolders, spread: options.spread, beside: options.beside },
    listings,
    wanted,
    spellings,
  };
}

/**
 * Each planned listing as the ranges (or folders) that cover the refs under it: the ranges already `started`
 * when they can take them over ({@link takesOver}), so that they serve it, else ranges of its own.
 */
function rangesOf(
  planned: Listing[],
  refs: KeyRef[],
  { spread, beside = [] }: VerifyOptions,
  started: readonly Listing[],
): (listing: Listing) => Listing[] {
  const plannedOf = listingLookup(planned);
  const keysUnder = new Map<Listing, string[]>(planned.map((listing) => [listing, []]));
  for (const ref of refs) keysUnder.get(plannedOf(ref)!)!.push(ref.key);
  return (listing) => {
    const keys = keysUnder.get(listing)!;
    const ranges = started.filter(
      (range) =>
        range.bucket === listing.bucket &&
        range.prefix === listing.prefix &&
        (range.from !== undefined || range.before !== undefined),
    );
    const besideIt = beside
      .filter(
        (other) =>
          other.bucket === listing.bucket && other.folder.startsWith(listing.prefix) && other.folder !== listing.prefix,
      )
      .map((other) => [other.folder, other.keys] as const);
    return takesOver(ranges, listing.bucket, keys, spread, besideIt)
      ? ranges.map((range) => ({ ...listing, from: range.from, before: range.before }))
      : rangeListings(listing, keys, spread, besideIt);
  };
}

/**
 * Whether ranges already started list `keys` as well as new ones would: each key inside one, and none holding
 * more than a page (its keys and those `beside` it, else its keys times `spread`). Else they would read page
 * after page: the first URL's unbounded guess when there is no cache (scale 10: 50 pages in a row, 9.0 s;
 * ranges, 5.0–6.6 s), or a range a partial cache planned. A new plan's ranges that come out the same are still
 * served by them.
 */
function takesOver(
  ranges: readonly Listing[],
  bucket: string,
  keys: readonly string[],
  spread = 1,
  beside: ReadonlyArray<readonly [string, number]> = [],
): boolean {
  if (ranges.length === 0) return false;
  const rangeOf = listingLookup(ranges);
  const held = new Map<Listing, number>();
  for (const key of keys) {
    const range = rangeOf({ bucket, key });
    if (!range) return false;
    held.set(range, (held.get(range) ?? 0) + 1);
  }
  for (const [folder, count] of beside) {
    const range = rangeOf({ bucket, key: folder });
    if (range) held.set(range, (held.get(range) ?? 0) + count);
  }
  const page = beside.length > 0 ? PAGE_SIZE : PAGE_SIZE / Math.max(1, spread);
  return [...held.values()].every((count) => count <= page);
}

/** Runs every listing at once (those `early` serves taken over from it); a failed or denied one is recorded, not thrown. */
async function listEach(
  s3: S3Access,
  listings: Listing[],
  wanted: Map<Listing, Set<string>>,
  early: readonly EarlyListing[],
): Promise<Listings> {
  const result: Listings = { listings, found: new Map(), started: new Map(), failed: new Map(), denied: new Set() };
  const served = new Map<Listing, EarlyListing>();
  for (const started of early) {
    const listing = listings.find((planned) => !served.has(planned) && serves(started.listing, planned));
    if (listing) served.set(listing, started);
  }
  const taken = new Set(served.values());
  // Stopped now, so that an early listing of no use sends no more pages; awaited so that nothing outlives the call.
  const stopping = Promise.all(early.filter((started) => !taken.has(started)).map((started) => started.stop()));
  const objectsOf = (listing: Listing) =>
    served.get(listing)?.take(wanted.get(listing)!, listing) ?? listAll(s3, listing, wanted.get(listing)!);
  const outcomes = await Promise.allSettled(
    listings.map(async (listing) => {
      const checkedAt = served.get(listing)?.checkedAt ?? new Date().toISOString();
      result.started.set(listing, checkedAt);
      try {
        for (const object of await objectsOf(listing)) {
          result.found.set(`${listing.bucket}/${object.key}`, {
            etag: normalizeEtag(object.etag),
            size: object.size,
            checkedAt,
          });
        }
      } catch (error) {
        const failure = s3.fail(error, `s3://${listing.bucket}/${listing.prefix}`);
        if (failure instanceof UsageError) throw failure;
        if (failure.code === 'AccessDenied') result.denied.add(listing);
        else result.failed.set(listing, failure.message);
      }
    }),
  );
  await stopping;
  const usage = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (usage) throw usage.reason;
  return result;
}

/**
 * Whether a listing started early serves a planned one: the same range of the same prefix, or, started
 * without a range at the prefix's start, its first range (the first planned one `listEach` finds).
 */
function serves(started: Listing, planned: Listing): boolean {
  if (started.bucket !== planned.bucket || started.prefix !== planned.prefix) return false;
  const unbounded = started.from === undefined && started.before === undefined;
  return unbounded || (started.from === planned.from && started.before === planned.before);
}

/** One fact per URL from the listings, with a HEAD where a listing was denied or an ETag is no MD5. */
async function factsOf(
  s3: S3Access,
  plan: Plan,
  listed: Listings,
  options: VerifyOptions,
): Promise<Map<string, RemoteObjectFact>> {
  const facts = new Map<string, RemoteObjectFact>();
  const heads: Array<Promise<void>> = [];
  const headed = new Map<string, Promise<RemoteObjectFact>>();
  const warnDenied = once(options.onWarning);
  for (const [i, location] of plan.locations.entries()) {
    if (facts.has(location.url)) continue;
    const url = location.url;
    const spellings = plan.spellings[i]!;
    if (spellings.some((spelling) => listed.denied.has(spelling.listing))) {
      // No s3:ListBucket: this URL is asked about by HEAD (where a 403 means unknown, never absent).
      warnDenied?.(`s3://${location.bucket}/`, LIST_DENIED);
      heads.push(headEachSpelling(s3, location).then((fact) => void facts.set(url, fact)));
      continue;
    }
    const fact = listedFact(location, spellings, listed, options.deferHeads);
    if (!('heldKey' in fact)) {
      facts.set(url, fact);
      continue;
    }
    // A multipart (or otherwise non-MD5) ETag: only the MD5 in the object's metadata, or a checksum, can tell.
    const id = `${location.bucket}/${fact.heldKey}`;
    let head = headed.get(id);
    if (!head) headed.set(id, (head = headFact(s3, { ...location, key: fact.heldKey }, fact.listed)));
    heads.push(head.then((fromHead) => void facts.set(url, { ...fromHead, ...fact.held })));
  }
  await Promise.all(heads);
  return facts;
}

/** An object whose listed ETag is no MD5: a HEAD must say more. `held` names the key S3 holds when it is another spelling. */
interface HeadNeeded {
  heldKey: string;
  listed: Listed;
  held: { key?: string };
}

/** What the listings say of one URL (listed under one of its `spellings`), or that a HEAD must tell. */
function listedFact(
  location: S3Location,
  spellings: { key: string; listing: Listing }[],
  listed: Listings,
  deferHeads: boolean | undefined,
): RemoteObjectFact | HeadNeeded {
  const checkedAt = listed.started.get(spellings[0]!.listing)!;
  const failure = spellings
    .map((spelling) => listed.failed.get(spelling.listing))
    .find((reason) => reason !== undefined);
  // Unknown, so taken to exist (as without a remote check) and never compared.
  if (failure !== undefined) return { exists: true, md5: null, verifiable: false, checkedAt, error: failure };
  const present = spellings.filter((spelling) => listed.found.has(`${location.bucket}/${spelling.key}`));
  if (present.length > 1) {
    const error = ambiguous(
      location,
      present.map((spelling) => spelling.key),
    );
    return { exists: true, md5: null, verifiable: false, checkedAt, error };
  }
  if (present.length === 0) return { exists: false, md5: null, verifiable: true, checkedAt };
  const heldKey = present[0]!.key;
  const entry = listed.found.get(`${location.bucket}/${heldKey}`)!;
  // Another spelling of the URL's key: the fact names the key S3 holds.
  const held = heldKey === location.key ? {} : { key: heldKey };
  const md5 = md5OfEtag(entry.etag);
  if (md5 !== null || deferHeads) {
    return {
      exists: true,
      md5,
      etag: entry.etag,
      size: entry.size,
      verifiable: md5 !== null,
      checkedAt: entry.checkedAt,
      fromListing: true,
      ...held,
    };
  }
  return { heldKey, listed: entry, held };
}

/** Without a listing, a HEAD for each key the URL may mean: the one that exists, if exactly one does. */
async function headEachSpelling(s3: S3Access, location: S3Location): Promise<RemoteObjectFact> {
  const keys = keyCandidates(location);
  if (keys.length === 1) return headFact(s3, location);
  const facts = await Promise.all(keys.map((key) => headFact(s3, { ...location, key })));
  const present = keys.filter((_, i) => facts[i]!.exists && facts[i]!.error === undefined);
  if (present.length > 1)
    return {
      exists: true,
      md5: null,
      verifiable: false,
      checkedAt: facts[0]!.checkedAt,
      error: ambiguous(location, present),
    };
  if (present.length === 1) {
    const key = present[0]!;
    const fact = facts[keys.indexOf(key)]!;
    return key === location.key ? fact : { ...fact, key };
  }
  // None found: unknown when any answer was (a 403 may hide one), else absent.
  return facts.find((fact) => fact.error !== undefined) ?? facts[0]!;
}

function ambiguous(location: S3Location, keys: readonly string[]): string {
  return `${location.url}: S3 holds both ${keys.map((key) => JSON.stringify(key)).join(' and ')}, and the URL may mean either; write the key unambiguously (a space as %20, a "+" as %2B)`;
}

/** The run's one warning when a listing is denied. */
const LIST_DENIED =
  'listing denied (AccessDenied): the credentials lack s3:ListBucket on this bucket; each image is checked with a HEAD instead, where a missing object reads as 403 and is reported as could not be checked';

/**
 * HEADs each URL once (URLs that spell one key share the request) and returns what the object is: its MD5
 * from a single-part ETag when it is not encrypted with KMS or a customer key, else from the metadata this
 * tool stores, else `md5: null` with its CRC64NVME checksum when it has one (compare it with the local
 * file's), else unverifiable with the reason. `listed` gives the listing's fact for each URL, if any.
 * @throws {UsageError} when S3 cannot be reached or rejects the credentials.
 */
export async function confirmUrls(
  s3: S3Access,
  locations: readonly S3Location[],
  listed: ReadonlyMap<string, RemoteObjectFact> = new Map(),
): Promise<Map<string, RemoteObjectFact>> {
  const byKey = new Map<string, Promise<RemoteObjectFact>>();
  const facts = new Map<string, RemoteObjectFact>();
  await Promise.all(
    locations.map(async (location) => {
      const fact = listed.get(location.url);
      // The key S3 holds, when the listing found the URL's key spelled another way.
      const key = fact?.key ?? location.key;
      const id = `${location.bucket}/${key}`;
      let head = byKey.get(id);
      if (!head)
        byKey.set(
          id,
          (head = headFact(
            s3,
            { ...location, key },
            { etag: fact?.etag ?? '', size: fact?.size, checkedAt: fact?.checkedAt ?? '' },
          )),
        );
      facts.set(location.url, key === location.key ? await head : { ...(await head), key });
    }),
  );
  return facts;
}

/** A fact from a HEAD: after a listing (`listed`), or in place of a denied one. */
async function headFact(s3: S3Access, location: S3Location, listed?: Listed): Promise<RemoteObjectFact> {
  const checkedAt = new Date().toISOString();
  try {
    const head = await s3.run(() =>
      s3.send(location, (client) =>
        client.send(new S3.HeadObjectCommand({ Bucket: location.bucket, Key: location.key, ChecksumMode: 'ENABLED' })),
      ),
    );
    const etag = normalizeEtag(head.ETag ?? listed?.etag ?? '');
    const size = head.ContentLength ?? listed?.size;
    const crc64nvme = fullObjectCrc64(head);
    const fact = { exists: true, etag, size, checkedAt, ...(crc64nvme ? { crc64nvme } : {}) };
    // The ETag is the truth of an unencrypted single-part object; the metadata is what this tool stored.
    const md5 = md5OfObjectEtag(etag, head) ?? storedMd5(head.Metadata);
    if (md5 !== null) return { ...fact, md5, verifiable: true };
    const sealed = head.SSECustomerAlgorithm
      ? 'an SSE-C'
      : head.ServerSideEncryption === 'aws:kms:dsse'
        ? 'a DSSE-KMS'
        : 'an SSE-KMS';
    const unverifiable = etagHidesMd5(head)
      ? `${sealed} object without a stored MD5 or a checksum`
      : 'a multipart ETag without a stored MD5';
    return { ...fact, md5: null, verifiable: false, ...(crc64nvme ? {} : { unverifiable }) };
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    // Deleted between the listing and the HEAD.
    if (status === 404) return { exists: false, md5: null, verifiable: true, checkedAt };
    // Taken to exist, as listed if it was, and never compared.
    const unknown = { exists: true, md5: null, etag: listed?.etag, size: listed?.size, verifiable: false, checkedAt };
    // What S3 answers a HEAD of an SSE-C object sent without its key: the object exists, its bytes are sealed.
    if (status === 400)
      return {
        ...unknown,
        unverifiable: 'S3 refused its HEAD (HTTP 400), as for an object encrypted with a customer key (SSE-C)',
      };
    const failure = s3.fail(error, location.url);
    if (failure instanceof UsageError) throw failure;
    // Without s3:ListBucket, S3 answers 403 for a missing key too: unknown, never absent.
    const reason =
      status === 403 && !listed
        ? `${location.url}: S3 answered 403 (without s3:ListBucket a missing object and a denied one look the same)`
        : failure.message;
    return { ...unknown, error: reason };
  }
}

function once<A extends unknown[]>(tell: ((...args: A) => void) | undefined): ((...args: A) => void) | undefined {
  let told = false;
  return (
    tell &&
    ((...args) => {
      if (told) return;
      told = true;
      tell(...args);
    })
  );
}
