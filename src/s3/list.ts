/**
 * Listing a prefix (ListObjectsV2, 1000 keys a page), for `verifyUrls`: all at once for keys known, or early,
 * before they are (`startListing`). Keys come URL-encoded (`EncodingType=url`), so that a key XML 1.0
 * cannot carry does not break the page; a page that says more follow but gives no token fails the listing.
 */
import type { S3Access } from './client.js';
import { S3ObjectError } from './failures.js';
import type { Listing } from './prefixes.js';
import { S3 } from './sdk.js';
import { isPast, startAfterOf, type KeyRange } from './ranges.js';

/** Keys a ListObjectsV2 page holds at most (S3's own limit). */
export const PAGE_SIZE = 1000;

/** What a listing says of one object; `key` decoded, `etag` as S3 sent it (quoted). */
export interface ListedObject {
  key: string;
  etag: string;
  size: number | undefined;
}

/** Every object under one prefix that is among `keys`; the rest of each page is dropped at once. */
export async function listAll(s3: S3Access, listing: Listing, keys: ReadonlySet<string>): Promise<ListedObject[]> {
  const kept: ListedObject[] = [];
  await listPages(s3, listing, (objects) => {
    for (const object of objects) if (keys.has(object.key)) kept.push(object);
    return true;
  });
  return kept;
}

/**
 * Objects an early listing keeps, at most, before it knows which keys are wanted (one page); it then waits.
 * It serves the prefix's first key range, which ends within about a page: any page read further ahead
 * would be read again by the next range (bench:remote --latency 40, scale 10: 62 LIST requests with ten
 * pages ahead, 52 with one).
 */
export const EARLY_KEPT_MAX = PAGE_SIZE;

/**
 * A listing started before the keys it is for are known: `--remote` lists the folder the first actor's
 * URLs suggest while the workers still collect the others. Until `take` names the keys, every object of each
 * page is kept (up to `keptMax`, then it waits). `verifyUrls` takes it or stops it.
 */
export interface EarlyListing {
  readonly listing: Listing;
  /** When it was started: the `checkedAt` of what it finds. */
  readonly checkedAt: string;
  /**
   * The objects among `keys`, once the listing is complete (or past `range`: it began at the prefix's start,
   * so it serves the prefix's first range); rejects with the error that ended the listing.
   */
  take(keys: ReadonlySet<string>, range?: KeyRange): Promise<ListedObject[]>;
  /** Stops it after the page in flight and drops what it found; resolves once no request is left. Never rejects. */
  stop(): Promise<void>;
}

/** Starts listing `listing` now (see {@link EarlyListing}). */
export function startListing(s3: S3Access, listing: Listing, keptMax = EARLY_KEPT_MAX): EarlyListing {
  const checkedAt = new Date().toISOString();
  let kept: ListedObject[] = [];
  let keys: ReadonlySet<string> | undefined;
  let bound: KeyRange = {};
  let stopped = false;
  let wake: (() => void) | undefined;
  const awake = () => {
    wake?.();
    wake = undefined;
  };
  const done = listPages(s3, listing, async (objects) => {
    if (stopped) return false;
    for (const object of objects) if (!keys || keys.has(object.key)) kept.push(object);
    while (!keys && !stopped && kept.length >= keptMax) await new Promise<void>((resolve) => (wake = resolve));
    return !stopped && !pastRange(objects, bound);
  });
  done.catch(() => undefined); // reported by take; dropped by stop
  return {
    listing,
    checkedAt,
    async take(wanted, range = {}) {
      keys = wanted;
      bound = range;
      kept = kept.filter((object) => wanted.has(object.key));
      awake();
      await done;
      return kept;
    },
    async stop() {
      stopped = true;
      awake();
      await done.catch(() => undefined);
    },
  };
}

/**
 * Lists `listing` page by page, handing each page's objects to `onPage`, until the last page or until
 * `onPage` resolves false.
 */
async function listPages(
  s3: S3Access,
  listing: Listing,
  onPage: (objects: ListedObject[]) => boolean | Promise<boolean>,
): Promise<void> {
  let token: string | undefined;
  do {
    const StartAfter = token === undefined ? startAfterOf(listing) : undefined;
    const request = {
      Bucket: listing.bucket,
      Prefix: listing.prefix || undefined,
      MaxKeys: PAGE_SIZE,
      ContinuationToken: token,
      StartAfter,
      EncodingType: 'url' as const,
    };
    const page = await s3.run(() => s3.send(listing, (client) => client.send(new S3.ListObjectsV2Command(request))));
    // A store that ignores EncodingType (s3rver) says so by leaving it out of its answer.
    const urlEncoded = page.EncodingType === 'url';
    const objects: ListedObject[] = [];
    for (const object of page.Contents ?? []) {
      if (object.Key !== undefined)
        objects.push({
          key: urlEncoded ? decodeListedKey(object.Key) : object.Key,
          etag: object.ETag ?? '',
          size: object.Size,
        });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (page.IsTruncated && !token) {
      throw new S3ObjectError(
        `s3://${listing.bucket}/${listing.prefix}`,
        'listing cut short: S3 said more keys follow but gave no continuation token; nothing under it is taken to be absent',
      );
    }
    if (!(await onPage(objects)) || pastRange(objects, listing)) return;
  } while (token);
}

/** True once a page has gone past the end of `range`: no later page holds a key of it. */
function pastRange(objects: readonly ListedObject[], range: KeyRange): boolean {
  const last = objects[objects.length - 1];
  return last !== undefined && isPast(last.key, range);
}

/** A key of an `EncodingType=url` listing: S3 form-encodes it (a space is `+`, a `+` is `%2B`). */
export function decodeListedKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}
