/**
 * Which key a transfer reads or replaces when its URL may spell the key several ways (SPEC §5: an https
 * URL's `+` may be a space; a name may be held in either Unicode form): the one a listing finds.
 */
import { keyCandidates, type S3Location } from '../shared/s3-url.js';
import type { S3Access } from './client.js';
import { S3ObjectError } from './failures.js';
import { verifyUrls } from './verify.js';

/**
 * `location` with the key S3 holds for it: asks S3 (one listing) only when its URL may spell the key several
 * ways ({@link keyCandidates}), so a transfer reads or replaces the object the listing found, never a guess.
 * @throws {S3ObjectError} naming the URL when the listing fails or S3 holds more than one key the URL may mean.
 */
export async function heldLocation(s3: S3Access, location: S3Location): Promise<S3Location> {
  if (keyCandidates(location).length === 1) return location;
  const fact = (await verifyUrls(s3, [location])).get(location.url)!;
  if (fact.error !== undefined)
    throw new S3ObjectError(
      location.url,
      `could not tell which key it names: ${fact.error.replace(`${location.url}: `, '')}`,
    );
  return fact.key === undefined ? location : { ...location, key: fact.key };
}
