/**
 * What an S3 failure means for the run, decided in one place so the wording lives here:
 *
 * - the endpoint cannot be reached, or the credentials are missing or rejected → {@link UsageError}
 *   (exit 2): every request would fail the same way, so the run stops with one line;
 * - anything else (a 5xx or a timeout that outlived the retries, a denied or missing object, bytes that do
 *   not match their MD5) → {@link S3ObjectError}: reported for that image, which is never recorded as synced.
 */
import { STATUS_CODES } from 'node:http';
import { UsageError } from '../errors.js';
import { regionProblem } from './regions.js';

/** One object (or one listing) that could not be read or written. The message names it and says why. */
export class S3ObjectError extends Error {
  constructor(
    /** The object's URL, or `s3://bucket/prefix` for a listing. */
    readonly target: string,
    readonly reason: string,
    /** The S3 error code (`SlowDown`, `NoSuchKey`…) or the Node error code (`ECONNRESET`), when there is one. */
    readonly code?: string,
    readonly status?: number,
  ) {
    super(`${target}: ${reason}`);
    this.name = 'S3ObjectError';
  }
}

/** Node error codes that mean nothing at the endpoint answers: retrying another object will not help. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** S3 error codes that reject who is asking, not what is asked for. */
const BAD_CREDENTIALS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidClientTokenId',
]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  errors?: unknown[];
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

/**
 * Maps anything an S3 call threw to the error the caller should report.
 * @param target the object's URL or the listing's `s3://bucket/prefix`, for the message.
 * @param endpoint where requests go (see `S3Access.endpoint`), for the "cannot reach" message.
 * @param attempts how many times the caller tried, when it retried on its own (a body cut off mid-download).
 * @example toS3Error(new Error('connect ECONNREFUSED'), 's3://b/k', 'http://127.0.0.1:1') // UsageError
 */
export function toS3Error(
  error: unknown,
  target: string,
  endpoint: string,
  attempts?: number,
): UsageError | S3ObjectError {
  if (error instanceof UsageError || error instanceof S3ObjectError) return error;
  const sdk = (typeof error === 'object' && error !== null ? error : {}) as SdkErrorShape;
  const code = nodeCode(sdk);
  if (code !== undefined && UNREACHABLE.has(code)) {
    return new UsageError(
      `cannot reach S3 at ${endpoint} (${code}); check --endpoint / AWS_ENDPOINT_URL_S3 and the network`,
    );
  }
  if (sdk.name === 'CredentialsProviderError') {
    return new UsageError(
      `no AWS credentials found (${oneLine(sdk.message ?? '')}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`,
    );
  }
  // Signed for a region the bucket is not in: the credentials are fine (regions.ts learns the region; this is
  // what is left when it could not).
  const region = regionProblem(error);
  if (region) {
    const home = region.region ? `; it is in ${region.region}` : '';
    return new UsageError(
      `S3 at ${endpoint} answered that the bucket of ${target} is not in the region the request was signed for (${region.code}${home}); name the region in the URL or set AWS_REGION`,
    );
  }
  // A response without a body (HEAD, or a proxy's bare 5xx) has no S3 code: the SDK says `Unknown`.
  const s3Code = sdk.$metadata && sdk.name !== 'Unknown' ? sdk.name : undefined;
  if (s3Code !== undefined && BAD_CREDENTIALS.has(s3Code)) {
    return new UsageError(
      `S3 at ${endpoint} rejected the credentials (${s3Code}); check AWS_ACCESS_KEY_ID / AWS_PROFILE and the region`,
    );
  }
  const status = sdk.$metadata?.httpStatusCode;
  const tried = Math.max(attempts ?? 0, sdk.$metadata?.attempts ?? 0);
  const httpStatus =
    status === undefined ? undefined : `HTTP ${status}${STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : ''}`;
  const what = [s3Code ?? code ?? (sdk.$metadata ? undefined : sdk.name), httpStatus].filter(Boolean).join(', ');
  const message = oneLine(sdk.message ?? String(error));
  const hint =
    s3Code === 'AccessDenied' || status === 403
      ? ' (check the IAM and bucket policies: verification needs s3:ListBucket, push s3:PutObject, pull s3:GetObject)'
      : '';
  const tries = tried > 1 ? ` after ${tried} attempts` : '';
  const detail = message && message !== what && message !== 'UnknownError' ? `: ${message}` : '';
  return new S3ObjectError(
    target,
    `failed${tries} (${what || 'unknown error'})${detail}${hint}`,
    s3Code ?? code,
    status,
  );
}

/** The Node error code, also when a connection attempt to several addresses failed as an AggregateError. */
function nodeCode(error: SdkErrorShape): string | undefined {
  if (typeof error.code === 'string') return error.code;
  const inner = error.errors?.find((e): e is SdkErrorShape => typeof (e as SdkErrorShape | null)?.code === 'string');
  return inner?.code;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
}
