/**
 * `push` and `pull` for one image (SPEC §4–5). Uploads store the MD5 in the object's metadata and send a
 * full-object CRC64NVME checksum (multipart included), so that an object whose ETag is no MD5 (multipart,
 * SSE-KMS) can still be verified; downloads are checked against that MD5, the ETag when it is one, or the
 * checksum, before the file is committed.
 *
 * The checksum is computed here and sent as a header (`x-amz-checksum-crc64nvme`), never by the SDK: a body
 * it checksums itself is sent aws-chunked, which S3-compatible stores such as s3rver refuse. Multipart uploads
 * are sent part by part here too (not by lib-storage's `Upload`), so that the checksum type (`FULL_OBJECT`)
 * and the write condition go on CompleteMultipartUpload alone.
 *
 * One retry layer: each request is retried by the SDK (standard mode: backoff for throttling, 5xx, resets
 * and timeouts); a download is fetched again only when its body was cut off after the SDK returned it, and
 * every request for one object, the SDK's retries included, counts against one `maxAttempts`.
 *
 * Downloads are read into memory and written with `commitFile`, the tool's one atomic writer, rather than
 * streamed to a temp file: images are at most a few MB, and a second writer would repeat its temp naming,
 * fsyncs and crash clean-up (`removeStaleTemps` knows its temp files; a pull removes those a killed pull left
 * in the training_data folders before it downloads). Memory in flight is bounded
 * by `--s3-concurrency` × the image size (16 × 8 MB = 128 MB at worst).
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CompletedPart, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { md5Hex } from '../md5/hex.js';
import { commitFile } from '../manifest/commit.js';
import type { S3Location } from '../shared/s3-url.js';
import type { S3Access } from './client.js';
import { Crc64, crc64nvme, fullObjectCrc64 } from './checksum.js';
import { S3ObjectError } from './failures.js';
import { S3 } from './sdk.js';
import { etagMatches, MD5_HEX, MD5_METADATA_KEY, md5OfObjectEtag, normalizeEtag, storedMd5 } from './etag.js';
import { imageContentType } from '../engine/discover.js';

const MiB = 1024 * 1024;
/** Files up to this size go in one PutObject from a Buffer. */
const SINGLE_PUT_MAX = 8 * MiB;
/** Part size of multipart uploads, as the AWS CLI's default: its ETags can then be recomputed locally. */
export const PART_SIZE = 8 * MiB;
/** Objects larger than this are not pulled into memory: no training image comes near it. */
const DOWNLOAD_MAX = 256 * MiB;

/**
 * What must be at the key for an upload to go ahead (SPEC §5, "never overwrite what was not seen"):
 * no object (`If-None-Match: *`), or the object with the ETag a check saw (`If-Match`).
 */
export type WriteCondition = { absent: true } | { etag: string };

/** A run's knowledge of its store, shared by its uploads: set once the store refused a conditional write. */
export interface ConditionalWrites {
  unsupported: boolean;
}

export interface UploadOptions {
  /** Sent with the PutObject, or with the CompleteMultipartUpload. Default: none (the object is replaced). */
  condition?: WriteCondition;
  /** When the store answers 501 NotImplemented to the condition, upload without it (`--allow-overwrite`). */
  allowOverwrite?: boolean;
  /** Shared by a run's uploads, so that a store without conditional writes is asked once. */
  conditionalWrites?: ConditionalWrites;
}

export interface Uploaded {
  /** The object's ETag, without quotes. */
  etag: string;
  /** The full-object CRC64NVME sent with it (base64). */
  crc64nvme: string;
}

/**
 * Uploads the file at `path` to `location`, with `md5` (the hash the caller recorded for it) in the
 * object's metadata and its CRC64NVME as a full-object checksum. If the file's bytes no longer have that
 * MD5, nothing is stored: a single PUT is not sent, a multipart upload is aborted before it completes.
 * @throws {S3ObjectError} naming the URL (changed file, a failed condition, a failure that outlived the retries).
 * @throws {UsageError} when S3 cannot be reached or rejects the credentials.
 * @throws the Node error (ENOENT, EACCES…) when the local file cannot be read.
 */
export async function upload(
  s3: S3Access,
  location: S3Location,
  path: string,
  md5: string,
  options: UploadOptions = {},
): Promise<Uploaded> {
  const expected = md5.toLowerCase();
  if (!MD5_HEX.test(expected)) throw new TypeError(`upload: md5 must be 32 hex digits (got ${JSON.stringify(md5)})`);
  const params = {
    Bucket: location.bucket,
    Key: location.key,
    Metadata: { [MD5_METADATA_KEY]: expected },
    ContentType: imageContentType(location.key),
  };
  // Known already to fail at the end: not one part is sent.
  if (options.condition && options.conditionalWrites?.unsupported && !options.allowOverwrite)
    throw conditionsUnsupported(location);
  // Local read errors (the file vanished, permissions) surface as they are: they are not S3's.
  const { size } = await stat(path);
  if (size > SINGLE_PUT_MAX) return uploadInParts(s3, location, path, size, expected, params, options);
  const body = await readFile(path);
  const actual = md5Hex(body);
  if (actual !== expected) throw changedSinceHashed(location, path, expected, actual);
  const crc = await crc64nvme(body);
  // One budget for the object, as a download has: a region redirect or the 501 fallback sends it again within it.
  const attempts = new Attempts(s3.maxAttempts);
  try {
    const out = await conditionally(location, options, (condition) =>
      s3.run(() =>
        s3.send(location, (client) =>
          client.send(
            attempts.counted(
              new S3.PutObjectCommand({
                ...params,
                ...condition,
                Body: body,
                ContentLength: body.length,
                ContentMD5: Buffer.from(actual, 'hex').toString('base64'),
                ChecksumCRC64NVME: crc,
              }),
            ),
          ),
        ),
      ),
    );
    return { etag: normalizeEtag(out.ETag ?? ''), crc64nvme: crc };
  } catch (error) {
    throw s3.fail((error as Error).name === 'AttemptsSpent' ? attempts.last : error, location.url);
  }
}

/**
 * A multipart upload in {@link PART_SIZE} parts, one at a time in one request slot (the run's bound holds; a
 * file's parallelism comes from the other files in flight). The MD5 and the CRC64NVME are computed over the
 * parts as they are read; the upload is completed only when the MD5 is still the recorded one, else aborted.
 */
async function uploadInParts(
  s3: S3Access,
  location: S3Location,
  path: string,
  size: number,
  expected: string,
  params: PutParams,
  options: UploadOptions,
): Promise<Uploaded> {
  return s3.run(async () => {
    const target = await createMultipartUpload(s3, location, params);
    const local: LocalRead = { reading: false };
    try {
      const sent = await sendParts(target, location, path, size, local);
      if (sent.md5 !== expected) throw changedSinceHashed(location, path, expected, sent.md5);
      return await completeMultipartUpload(target, location, options, sent);
    } catch (error) {
      // The parts would otherwise be kept (and billed) until a lifecycle rule removes them.
      const { client, Bucket, Key, UploadId } = target;
      await client.send(new S3.AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
      throw local.reading ? error : s3.fail(error, location.url);
    }
  });
}

type PutParams = { Bucket: string; Key: string; Metadata: Record<string, string>; ContentType: string };

/** A multipart upload under way: the client its parts go through, and the upload they belong to. */
interface PartsTarget {
  client: S3Client;
  Bucket: string;
  Key: string;
  UploadId: string | undefined;
}

/** Set while the local file is read: a read error is the file's, not S3's, so it surfaces as it is. */
interface LocalRead {
  reading: boolean;
}

/** The parts sent, with the MD5 (hex) and the running CRC64NVME of the bytes they hold. */
interface SentParts {
  parts: CompletedPart[];
  md5: string;
  crc: Crc64;
}

async function createMultipartUpload(s3: S3Access, location: S3Location, params: PutParams): Promise<PartsTarget> {
  const failed = (error: unknown) => Promise.reject(s3.fail(error, location.url));
  // The parts are not sent twice after a redirect: the bucket's region is settled before the first.
  const client = await s3.clientFor(location).catch(failed);
  const created = await client
    .send(
      new S3.CreateMultipartUploadCommand({ ...params, ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' }),
    )
    .catch(failed);
  return { client, Bucket: params.Bucket, Key: params.Key, UploadId: created.UploadId };
}

/** Reads the file part by part, sending each as it is read, one at a time. */
async function sendParts(
  target: PartsTarget,
  location: S3Location,
  path: string,
  size: number,
  local: LocalRead,
): Promise<SentParts> {
  const md5 = createHash('md5');
  const crc = new Crc64();
  const parts: CompletedPart[] = [];
  const file = await readLocally(local, () => open(path));
  try {
    for (let offset = 0, PartNumber = 1; offset < size; offset += PART_SIZE, PartNumber += 1) {
      const part = Buffer.alloc(Math.min(PART_SIZE, size - offset));
      const { bytesRead } = await readLocally(local, () => file.read(part, 0, part.length, offset));
      if (bytesRead !== part.length)
        throw new S3ObjectError(
          location.url,
          `not uploaded: ${path} changed since it was hashed (it is shorter now); run sync again`,
        );
      md5.update(part);
      crc.update(part);
      parts.push(await sendPart(target, PartNumber, part));
    }
  } finally {
    await file.close();
  }
  return { parts, md5: md5.digest('hex'), crc };
}

/** Runs `read` with `local.reading` set; a read that throws leaves it set, for the upload's catch to see. */
async function readLocally<T>(local: LocalRead, read: () => Promise<T>): Promise<T> {
  local.reading = true;
  const result = await read();
  local.reading = false;
  return result;
}

async function sendPart(
  { client, Bucket, Key, UploadId }: PartsTarget,
  PartNumber: number,
  part: Buffer,
): Promise<CompletedPart> {
  const ChecksumCRC64NVME = await crc64nvme(part);
  const out = await client.send(
    new S3.UploadPartCommand({
      Bucket,
      Key,
      UploadId,
      PartNumber,
      Body: part,
      ContentLength: part.length,
      ChecksumCRC64NVME,
    }),
  );
  return { PartNumber, ETag: out.ETag, ChecksumCRC64NVME };
}

/** Completes the upload with its full-object checksum, under the upload's write condition. */
async function completeMultipartUpload(
  { client, Bucket, Key, UploadId }: PartsTarget,
  location: S3Location,
  options: UploadOptions,
  { parts, crc }: SentParts,
): Promise<Uploaded> {
  const full = await crc.digest();
  const out = await conditionally(location, options, (condition) =>
    client.send(
      new S3.CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: parts },
        ChecksumCRC64NVME: full,
        ChecksumType: 'FULL_OBJECT',
        ...condition,
      }),
    ),
  );
  return { etag: normalizeEtag(out.ETag ?? ''), crc64nvme: full };
}

type ConditionHeaders = { IfNoneMatch?: string; IfMatch?: string };

/**
 * Sends `write` with the upload's condition. A 412 fails the image with what to do; a store that answers
 * 501 NotImplemented to the condition is remembered for the run, and the write is sent without it only
 * when `allowOverwrite` says so.
 */
async function conditionally<T>(
  location: S3Location,
  options: UploadOptions,
  write: (condition: ConditionHeaders) => Promise<T>,
): Promise<T> {
  const { condition, conditionalWrites: store } = options;
  if (condition === undefined) return write({});
  // A 501 to a write without a condition was not about the condition: the other header it carries is the checksum.
  const unconditional = () =>
    write({}).catch((error: unknown) => {
      if (statusOf(error) !== 501) throw error;
      if (store) store.unsupported = false;
      throw notImplemented(
        location,
        namedOtherThanCondition(error) ?? 'the x-amz-checksum-crc64nvme header of the upload',
      );
    });
  if (store?.unsupported) {
    if (!options.allowOverwrite) throw conditionsUnsupported(location);
    return unconditional();
  }
  try {
    return await write('absent' in condition ? { IfNoneMatch: '*' } : { IfMatch: `"${condition.etag}"` });
  } catch (error) {
    const status = statusOf(error);
    if (status === 412) {
      const why =
        'absent' in condition
          ? 'an object already exists there'
          : `the object there is no longer the one last checked (ETag ${condition.etag})`;
      throw new S3ObjectError(
        location.url,
        `not uploaded: ${why}: run \`sync --remote\` to compare`,
        'PreconditionFailed',
        412,
      );
    }
    if (status !== 501) throw error;
    const other = namedOtherThanCondition(error);
    if (other !== undefined) throw notImplemented(location, other);
    if (store) store.unsupported = true;
    if (!options.allowOverwrite) throw conditionsUnsupported(location);
    return unconditional();
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** What a 501 says is not implemented when that is not the write condition: another code, or another header it names. */
function namedOtherThanCondition(error: unknown): string | undefined {
  const { Code, Header, message } = error as { Code?: unknown; Header?: unknown; message?: unknown };
  if (typeof Code === 'string' && Code !== 'NotImplemented') return Code;
  const header =
    typeof Header === 'string'
      ? Header
      : typeof message === 'string'
        ? /\bx-amz-[a-z0-9-]+/i.exec(message)?.[0]
        : undefined;
  return header !== undefined && !/^if-(none-)?match$/i.test(header) ? `the ${header} header` : undefined;
}

function notImplemented(location: S3Location, what: string): S3ObjectError {
  return new S3ObjectError(
    location.url,
    `not uploaded: the store does not support ${what} (501 NotImplemented)`,
    'NotImplemented',
    501,
  );
}

function conditionsUnsupported(location: S3Location): S3ObjectError {
  return new S3ObjectError(
    location.url,
    'not uploaded: the store does not support conditional writes (501 NotImplemented), so an object there could be replaced unseen; pass --allow-overwrite to upload anyway',
    'NotImplemented',
    501,
  );
}

export interface DownloadOptions {
  /** Replace a file already at the target. Default false: an existing image is never overwritten. */
  overwrite?: boolean;
}

export interface Downloaded {
  md5: string;
  size: number;
  /**
   * True when the bytes matched what S3 stated: the stored metadata MD5, a single-part ETag of an object
   * not encrypted with KMS or a customer key, a full-object CRC64NVME checksum, or a multipart ETag
   * recomputed from the bytes. False when S3 stated none of them: the file was written, but report it as
   * unverified.
   */
  verified: boolean;
  /** The object's ETag, without quotes. */
  etag: string;
  /** The full-object CRC64NVME checksum S3 stated, when it stated one. */
  crc64nvme?: string;
}

/**
 * Downloads `location` to `targetPath` (its folder is created): the bytes are read, checked against what
 * S3 states, then committed atomically. On any failure nothing is written at `targetPath`. A body cut off
 * after the response began is fetched again while the object's attempts last (`maxAttempts` requests in
 * all, the SDK's own retries included).
 * @throws {S3ObjectError} naming the URL (missing object, MD5 mismatch, existing target, failure after retries).
 * @throws {UsageError} when S3 cannot be reached or rejects the credentials.
 * @throws {CommitError} when the file cannot be written.
 */
export async function download(
  s3: S3Access,
  location: S3Location,
  targetPath: string,
  options: DownloadOptions = {},
): Promise<Downloaded> {
  if (!options.overwrite && (await exists(targetPath))) {
    throw new S3ObjectError(location.url, `not downloaded: ${targetPath} already exists (it is never overwritten)`);
  }
  const attempts = new Attempts(s3.maxAttempts);
  let fetched: Downloaded & { body: Buffer };
  for (;;) {
    try {
      fetched = await s3.run(() => fetchChecked(s3, location, attempts));
      break;
    } catch (error) {
      if (!(error instanceof CutOff) || attempts.spent())
        throw s3.fail(
          error instanceof CutOff
            ? error.streamError
            : (error as Error).name === 'AttemptsSpent'
              ? attempts.last
              : error,
          location.url,
          attempts.used,
        );
    }
  }
  const { body, ...downloaded } = fetched;
  await mkdir(dirname(targetPath), { recursive: true });
  await commitFile(targetPath, body);
  return downloaded;
}

/** One GET, its body read whole and checked against what S3 states. */
async function fetchChecked(
  s3: S3Access,
  location: S3Location,
  attempts: Attempts,
): Promise<Downloaded & { body: Buffer }> {
  const get = attempts.counted(
    new S3.GetObjectCommand({ Bucket: location.bucket, Key: location.key, ChecksumMode: 'ENABLED' }),
  );
  const out = await s3.send(location, (client) => client.send(get));
  if (out.ContentLength !== undefined && out.ContentLength > DOWNLOAD_MAX) {
    (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
    throw new S3ObjectError(
      location.url,
      `not downloaded: ${out.ContentLength} bytes is more than the ${DOWNLOAD_MAX / MiB} MiB an image may have`,
    );
  }
  if (!out.Body) throw new S3ObjectError(location.url, 'S3 returned no body');
  let body: Buffer;
  try {
    body = Buffer.from(await out.Body.transformToByteArray());
  } catch (error) {
    // After the SDK returned: its retries are over, so this is the one error fetched again here.
    throw new CutOff(location.url, 'the body was cut off', error);
  }
  if (out.ContentLength !== undefined && body.length !== out.ContentLength) {
    throw new CutOff(location.url, `got ${body.length} of ${out.ContentLength} bytes`);
  }
  const etag = normalizeEtag(out.ETag ?? '');
  const md5 = md5Hex(body);
  const crc64 = fullObjectCrc64(out);
  const downloaded = { body, md5, size: body.length, etag, ...(crc64 ? { crc64nvme: crc64 } : {}) };
  const expected = storedMd5(out.Metadata) ?? md5OfObjectEtag(etag, out);
  if (expected !== null) {
    if (md5 !== expected)
      throw new CutOff(location.url, `downloaded bytes have MD5 ${md5} but S3 states ${expected}; nothing was written`);
    return { ...downloaded, verified: true };
  }
  if (crc64 !== undefined) {
    const actual = await crc64nvme(body);
    if (actual !== crc64)
      throw new CutOff(
        location.url,
        `downloaded bytes have CRC64NVME ${actual} but S3 states ${crc64}; nothing was written`,
      );
    return { ...downloaded, verified: true };
  }
  return { ...downloaded, verified: (await etagMatches(etag, md5, body)) === true };
}

/**
 * A transfer that may succeed when tried again: a body cut off, or bytes that arrived damaged. `streamError`
 * is what to report when the attempts run out: the stream's own error, else this one.
 */
class CutOff extends S3ObjectError {
  readonly streamError: unknown;
  constructor(target: string, why: string, streamError?: unknown) {
    super(target, why);
    this.streamError = streamError ?? this;
  }
}

/**
 * The requests one object may take, the SDK's retries included: a middleware placed after the SDK's retry
 * step counts each request sent, and refuses one beyond `max` (the SDK then gives up: that error is not
 * retryable). `last` is the error the last request sent got, to report instead of the refusal.
 */
class Attempts {
  used = 0;
  last: unknown;
  constructor(readonly max: number) {}

  spent(): boolean {
    return this.used >= this.max;
  }

  counted<C extends GetObjectCommand | PutObjectCommand>(command: C): C {
    const middleware = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      if (this.spent()) throw Object.assign(new Error('no attempt left for this object'), { name: 'AttemptsSpent' });
      this.used += 1;
      try {
        return await next(args);
      } catch (error) {
        this.last = error;
        throw error;
      }
    };
    command.middlewareStack.addRelativeTo(middleware as never, {
      relation: 'after',
      toMiddleware: 'retryMiddleware',
      name: 'actorSyncAttempts',
    });
    return command;
  }
}

function changedSinceHashed(location: S3Location, path: string, expected: string, actual: string): S3ObjectError {
  return new S3ObjectError(
    location.url,
    `not uploaded: ${path} changed since it was hashed (MD5 ${expected}, now ${actual}); run sync again`,
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
