/**
 * S3 ETags and what they say about an object's MD5 (SPEC §5). A single-part object's ETag is the MD5 of
 * its bytes, unless the object is encrypted with SSE-KMS, DSSE-KMS or a customer key (SSE-C): then it is 32
 * hex digits that are not the MD5 (AWS API reference, `Object`), and only a HEAD or GET can tell which. A
 * multipart object's ETag is `md5(md5(part 1) ‖ … ‖ md5(part N))-N`, over the binary digests: it depends on
 * the part size the uploader chose, so it can confirm a local file but never refute one.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

const MiB = 1024 * 1024;

/** Metadata key (`x-amz-meta-md5`) where this tool's uploads store the object's MD5. */
export const MD5_METADATA_KEY = 'md5';

/** 32 lowercase hex digits. */
export const MD5_HEX = /^[0-9a-f]{32}$/;
const MULTIPART = /^([0-9a-f]{32})-([1-9][0-9]{0,4})$/;

/**
 * Part sizes uploaders use most (AWS CLI and this tool: 8 MiB; SDK and console defaults: 5, 16, 64 MiB…),
 * tried when a multipart ETag is checked against a local file.
 */
const COMMON_PART_SIZES: readonly number[] = [8, 5, 16, 10, 15, 25, 32, 50, 64, 100, 128, 256, 512].map((n) => n * MiB);

/**
 * An ETag as S3 sends it (`"…"`, sometimes `W/"…"`, any case) → the bare lowercase value.
 * @example normalizeEtag('"9A0364B9E99BB480DD25E1F0284C8555"') // '9a0364b9e99bb480dd25e1f0284c8555'
 */
export function normalizeEtag(etag: string): string {
  return etag.trim().replace(/^W\//, '').replace(/"/g, '').toLowerCase();
}

/**
 * The MD5 a (normalized) ETag stands for when the object is not encrypted with KMS or a customer key:
 * itself when single-part, null when multipart or of another form. A listing does not say how an object is
 * encrypted: what it gives is confirmed by a HEAD before an image is called out of sync (verify.ts).
 */
export function md5OfEtag(etag: string): string | null {
  return MD5_HEX.test(etag) ? etag : null;
}

/** How a HEAD or GET describes an object's encryption (the SDK's output fields). */
export interface ObjectEncryption {
  ServerSideEncryption?: string;
  SSECustomerAlgorithm?: string;
}

/** Encryptions whose single-part ETag is not the MD5 of the bytes (SSE-S3, `AES256`, keeps the MD5). */
const ETAG_NOT_MD5 = new Set(['aws:kms', 'aws:kms:dsse']);

/** True when the object's ETag is not its MD5 whatever its form: SSE-KMS, DSSE-KMS, SSE-C. */
export function etagHidesMd5(object: ObjectEncryption): boolean {
  return ETAG_NOT_MD5.has(object.ServerSideEncryption ?? '') || object.SSECustomerAlgorithm !== undefined;
}

/**
 * The MD5 an ETag stands for, knowing the object's encryption from a HEAD or GET: the single-part ETag of an
 * object not encrypted with KMS or a customer key; else null.
 */
export function md5OfObjectEtag(etag: string, object: ObjectEncryption): string | null {
  return etagHidesMd5(object) ? null : md5OfEtag(normalizeEtag(etag));
}

/** The MD5 this tool stored in an object's metadata (`x-amz-meta-md5`), when it is one. */
export function storedMd5(metadata: Record<string, string> | undefined): string | null {
  const stored = metadata?.[MD5_METADATA_KEY]?.toLowerCase();
  return stored !== undefined && MD5_HEX.test(stored) ? stored : null;
}

/** N of a multipart ETag `…-N`; null for any other form. */
export function partCountOf(etag: string): number | null {
  const match = MULTIPART.exec(normalizeEtag(etag));
  return match ? Number(match[2]) : null;
}

/**
 * The ETag S3 gives `bytes` uploaded in parts of `partSize` bytes (the last one shorter). Always the
 * multipart form, `-1` included: that is what a one-part multipart upload gets.
 * @example multipartEtag(Buffer.concat([Buffer.alloc(256, '0'), Buffer.from('1')]), 256) // '66d1a1a2ed08fd05c137f316af4ff255-2'
 */
export function multipartEtag(bytes: Uint8Array, partSize: number): string {
  checkPartSize(partSize);
  const digests: Buffer[] = [];
  for (let start = 0; start < bytes.length || digests.length === 0; start += partSize) {
    digests.push(
      createHash('md5')
        .update(bytes.subarray(start, start + partSize))
        .digest(),
    );
  }
  return combine(digests);
}

/** {@link multipartEtag} of a file, read as a stream (memory stays at one read buffer). */
export async function multipartEtagOfFile(path: string, partSize: number): Promise<string> {
  checkPartSize(partSize);
  const digests: Buffer[] = [];
  let part = createHash('md5');
  let filled = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(partSize - filled, chunk.length - offset);
      part.update(chunk.subarray(offset, offset + take));
      filled += take;
      offset += take;
      if (filled === partSize) {
        digests.push(part.digest());
        part = createHash('md5');
        filled = 0;
      }
    }
  }
  if (filled > 0 || digests.length === 0) digests.push(part.digest());
  return combine(digests);
}

/**
 * Whether an object with `etag` holds the same bytes as a local file whose MD5 is `localMd5`.
 *
 * - single-part ETag: `true` or `false`, by comparing with `localMd5`;
 * - multipart ETag: `true` when the local bytes (`local`: a path or the bytes themselves), split at one of
 *   the {@link COMMON_PART_SIZES} or at the size the part count implies, give that ETag; else `null`;
 * - no `local`, or an ETag of another form (SSE-C, other stores): `null`.
 *
 * `null` means "cannot tell": the caller reports the image as unverifiable, never as out of sync.
 * @example await etagMatches('"d41d8cd98f00b204e9800998ecf8427e"', 'd41d8cd98f00b204e9800998ecf8427e') // true
 */
export async function etagMatches(
  etag: string,
  localMd5: string,
  local?: string | Uint8Array,
): Promise<boolean | null> {
  const value = normalizeEtag(etag);
  const md5 = md5OfEtag(value);
  if (md5 !== null) return md5 === localMd5.toLowerCase();
  const parts = partCountOf(value);
  if (parts === null || local === undefined) return null;
  const size = typeof local === 'string' ? (await stat(local)).size : local.length;
  for (const partSize of candidatePartSizes(size, parts)) {
    const computed =
      typeof local === 'string' ? await multipartEtagOfFile(local, partSize) : multipartEtag(local, partSize);
    if (computed === value) return true;
  }
  return null;
}

/** Part sizes that split `size` bytes into exactly `parts` parts: common ones first, then the implied one. */
export function candidatePartSizes(size: number, parts: number): number[] {
  // An empty object uploaded in parts still has one (empty) part.
  const fits = (partSize: number) => partSize > 0 && Math.max(1, Math.ceil(size / partSize)) === parts;
  const implied = Math.ceil(size / parts);
  const sizes = [...COMMON_PART_SIZES, Math.ceil(implied / MiB) * MiB, implied];
  return [...new Set(sizes)].filter(fits);
}

function combine(digests: Buffer[]): string {
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}`;
}

function checkPartSize(partSize: number): void {
  if (!Number.isSafeInteger(partSize) || partSize < 1)
    throw new RangeError(`partSize must be a positive whole number of bytes (got ${partSize})`);
}
