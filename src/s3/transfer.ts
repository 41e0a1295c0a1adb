/**
 * `push` and `pull` for one image (SPEC §4–5). Uploads store the MD5 in the object's metadata so that a
 * multipart object can still be verified; downloads are checked against that MD5 (or a single-part ETag)
 * before the file is committed.
 *
 * Downloads are read into memory and written with `commitFile`, the tool's one atomic writer, rather than
 * streamed to a temp file: images are at most a few MB, and a second writer would repeat its temp naming,
 * fsyncs and crash clean-up (`removeStaleTemps` knows its temp files; a pull removes those a killed pull left
 * in the training_data folders before it downloads). Memory in flight is bounded
 * by `--s3-concurrency` × the image size (16 × 8 MB = 128 MB at worst).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline, Transform } from 'node:stream';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { md5Hex } from '../md5/hex.js';
import { commitFile } from '../manifest/commit.js';
import type { S3Location } from '../s3-url.js';
import type { S3Access } from './client.js';
import { S3ObjectError } from './errors.js';
import { etagMatches, MD5_HEX, MD5_METADATA_KEY, md5OfEtag, normalizeEtag } from './etag.js';
import { imageContentType } from '../discover.js';

const MiB = 1024 * 1024;
/** Files up to this size go in one PutObject from a Buffer (which also avoids aws-chunked bodies). */
const SINGLE_PUT_MAX = 8 * MiB;
/** Part size of multipart uploads, as the AWS CLI's default: its ETags can then be recomputed locally. */
export const PART_SIZE = 8 * MiB;
/** Objects larger than this are not pulled into memory: no training image comes near it. */
const DOWNLOAD_MAX = 256 * MiB;


/**
 * Uploads the file at `path` to `location`, with `md5` (the hash the caller recorded for it) in the
 * object's metadata. If the file's bytes no longer have that MD5, nothing is stored: a single PUT is not
 * sent, a multipart upload is aborted before it completes.
 * @returns the object's ETag, without quotes.
 * @throws {S3ObjectError} naming the URL (changed file, or a failure that outlived the retries).
 * @throws {UsageError} when S3 cannot be reached or rejects the credentials.
 * @throws the Node error (ENOENT, EACCES…) when the local file cannot be read.
 */
export async function upload(s3: S3Access, location: S3Location, path: string, md5: string): Promise<{ etag: string }> {
  const expected = md5.toLowerCase();
  if (!MD5_HEX.test(expected)) throw new TypeError(`upload: md5 must be 32 hex digits (got ${JSON.stringify(md5)})`);
  const params = {
    Bucket: location.bucket,
    Key: location.key,
    Metadata: { [MD5_METADATA_KEY]: expected },
    ContentType: imageContentType(location.key),
  };
  // Local read errors (the file vanished, permissions) surface as they are: they are not S3's.
  const { size } = await stat(path);
  if (size <= SINGLE_PUT_MAX) {
    const body = await readFile(path);
    const actual = md5Hex(body);
    if (actual !== expected) throw changedSinceHashed(location, path, expected, actual);
    try {
      const out = await s3.run(() =>
        s3.send(location, (client) => client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: body.length, ContentMD5: Buffer.from(actual, 'hex').toString('base64') }))),
      );
      return { etag: normalizeEtag(out.ETag ?? '') };
    } catch (error) {
      throw s3.fail(error, location.url);
    }
  }
  // One request slot for the whole file, so its parts go one at a time (queueSize 1): the run's bound
  // holds, and a file's parallelism comes from the other files in flight.
  const body = gatedRead(location, path, expected);
  try {
    const out = await s3.run(async () =>
      new Upload({
        client: await s3.clientFor(location),
        params: { ...params, Body: body.stream, ContentLength: size },
        partSize: PART_SIZE,
        queueSize: 1,
        leavePartsOnError: false,
      }).done(),
    );
    return { etag: normalizeEtag(out.ETag ?? '') };
  } catch (error) {
    // The file's own failure first: lib-storage throws the abort's error instead when aborting fails too.
    throw body.failure() ?? s3.fail(error, location.url);
  } finally {
    body.stream.destroy(); // an upload that failed early would otherwise leave the file open
  }
}

export interface DownloadOptions {
  /** Replace a file already at the target. Default false: an existing image is never overwritten. */
  overwrite?: boolean;
}

export interface Downloaded {
  md5: string;
  size: number;
  /**
   * True when the bytes matched the MD5 S3 gave (the stored metadata MD5, a single-part ETag, or a
   * multipart ETag recomputed from the bytes). False for a multipart object without a stored MD5 whose
   * ETag matches none of the common part sizes: the file was written, but report it as unverified.
   */
  verified: boolean;
}

/**
 * Downloads `location` to `targetPath` (its folder is created): the bytes are read, their MD5 checked
 * against what S3 says, then committed atomically. On any failure nothing is written at `targetPath`.
 * A body cut off mid-transfer is fetched again, up to `maxAttempts` times.
 * @throws {S3ObjectError} naming the URL (missing object, MD5 mismatch, existing target, failure after retries).
 * @throws {UsageError} when S3 cannot be reached or rejects the credentials.
 * @throws {CommitError} when the file cannot be written.
 */
export async function download(s3: S3Access, location: S3Location, targetPath: string, options: DownloadOptions = {}): Promise<Downloaded> {
  if (!options.overwrite && (await exists(targetPath))) {
    throw new S3ObjectError(location.url, `not downloaded: ${targetPath} already exists (it is never overwritten)`);
  }
  let fetched: Fetched;
  for (let attempt = 1; ; attempt += 1) {
    try {
      fetched = await s3.run(() => fetchChecked(s3, location));
      break;
    } catch (error) {
      if (attempt >= s3.maxAttempts || !isCutOff(error)) throw s3.fail(error, location.url, attempt);
    }
  }
  const { body, md5, expected, etag } = fetched;
  const verified = expected !== null || (await etagMatches(etag, md5, body)) === true;
  await mkdir(dirname(targetPath), { recursive: true });
  await commitFile(targetPath, body);
  return { md5, size: body.length, verified };
}

interface Fetched {
  body: Buffer;
  md5: string;
  /** The MD5 S3 stated (metadata, else a single-part ETag) and the bytes matched; null when it stated none. */
  expected: string | null;
  etag: string;
}

/** One GET, its body read whole and checked against the MD5 S3 states. */
async function fetchChecked(s3: S3Access, location: S3Location): Promise<Fetched> {
  const out = await s3.send(location, (client) => client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key })));
  if (out.ContentLength !== undefined && out.ContentLength > DOWNLOAD_MAX) {
    (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
    throw new S3ObjectError(location.url, `not downloaded: ${out.ContentLength} bytes is more than the ${DOWNLOAD_MAX / MiB} MiB an image may have`);
  }
  if (!out.Body) throw new S3ObjectError(location.url, 'S3 returned no body');
  const body = Buffer.from(await out.Body.transformToByteArray());
  if (out.ContentLength !== undefined && body.length !== out.ContentLength) {
    throw new CutOff(location.url, `got ${body.length} of ${out.ContentLength} bytes`);
  }
  const etag = normalizeEtag(out.ETag ?? '');
  const stored = out.Metadata?.[MD5_METADATA_KEY]?.toLowerCase();
  const expected = stored !== undefined && MD5_HEX.test(stored) ? stored : md5OfEtag(etag);
  const actual = md5Hex(body);
  if (expected !== null && actual !== expected) {
    throw new CutOff(location.url, `downloaded bytes have MD5 ${actual} but S3 states ${expected}; nothing was written`);
  }
  return { body, md5: actual, expected, etag };
}

/** A transfer that may succeed when tried again: a body cut off, or bytes that arrived damaged. */
class CutOff extends S3ObjectError {}

function isCutOff(error: unknown): boolean {
  if (error instanceof CutOff) return true;
  if (error instanceof S3ObjectError) return false;
  const { name, code, message } = (error ?? {}) as { name?: string; code?: string; message?: string };
  return (
    name === 'TimeoutError' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ETIMEDOUT' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    message === 'aborted' ||
    /checksum mismatch/i.test(message ?? '')
  );
}

/**
 * The file's bytes as a stream that fails at its end if they do not have `expected` as MD5. `failure()`
 * is what went wrong on the local side, if anything: the changed MD5, or the read error.
 */
function gatedRead(location: S3Location, path: string, expected: string): { stream: Transform; failure: () => Error | undefined } {
  const hash = createHash('md5');
  let failure: Error | undefined;
  const gate = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      // Failing here, before the source ends, keeps lib-storage from completing the upload: it aborts it.
      const actual = hash.digest('hex');
      if (actual !== expected) failure = changedSinceHashed(location, path, expected, actual);
      callback(failure ?? null);
    },
  });
  // `pipeline`, not `pipe`: a read error must fail the gate too, or the upload would wait forever.
  pipeline(createReadStream(path), gate, (error) => {
    if (error && (error as NodeJS.ErrnoException).syscall !== undefined) failure ??= error;
  });
  return { stream: gate, failure: () => failure };
}

function changedSinceHashed(location: S3Location, path: string, expected: string, actual: string): S3ObjectError {
  return new S3ObjectError(location.url, `not uploaded: ${path} changed since it was hashed (MD5 ${expected}, now ${actual}); run sync again`);
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
