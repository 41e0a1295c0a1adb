/**
 * The S3 clients of a run (SPEC §5): AWS SDK v3 with the standard credential chain, an optional custom
 * endpoint, the SDK's standard retry strategy (backoff for throttling, 5xx, resets and timeouts), an
 * inactivity timeout so a stalled response becomes a retried timeout, one client per region (each bucket's
 * region found by `regions.ts`), and one p-limit and one set of counters for every request of the run.
 * Everything else in `src/s3/` takes the {@link S3Access} made here.
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import pLimit, { type LimitFunction } from 'p-limit';
import { UsageError } from '../errors.js';
import { toS3Error, type S3ObjectError } from './failures.js';
import { ListingProtocol } from './list-page.js';
import { BucketRegions, type BucketRef } from './regions.js';
import { S3 } from './sdk.js';

export type { BucketRef } from './regions.js';

/** How to reach S3: the CLI's `--endpoint`, `--force-path-style`, `--s3-concurrency`. */
export interface S3Options {
  /** A custom endpoint (MinIO, s3rver…). Default: `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, else AWS itself. */
  endpoint?: string;
  /** Path-style addressing (`http://host/bucket/key`), which most S3-compatible stores need. */
  forcePathStyle?: boolean;
  /**
   * The region of buckets whose URL names none. Default: the SDK's chain (`AWS_REGION`, `AWS_DEFAULT_REGION`,
   * the profile's `region`), else `us-east-1`. A bucket elsewhere is learned from S3's answer, once per run.
   */
  region?: string;
  /** Requests in flight at most, over the whole run. Default 16. */
  concurrency?: number;
  /** Attempts per request, the first included. Default 5. */
  maxAttempts?: number;
  /** A request is abandoned (and retried) after this long without a byte moving. Default 30 000. */
  requestTimeoutMs?: number;
  /** Explicit credentials (tests, embedding). Default: the standard AWS chain (env, profile, SSO, IMDS…). */
  credentials?: S3ClientConfig['credentials'];
}

/** Requests sent, by kind: one per SDK command, however many attempts it took. */
export interface S3Stats {
  /** ListObjectsV2 pages. */
  list: number;
  /** HeadObject (multipart objects during verification). */
  head: number;
  /** PutObject, and each request of a multipart upload (create, part, complete, abort). */
  put: number;
  /** GetObject. */
  get: number;
}

/** A configured client with its limiter and counters. Pass it to `verifyUrls`, `upload`, `download`. */
export interface S3Access {
  /** The client of the default region. For a bucket's objects use {@link S3Access.send}, which finds its region. */
  readonly client: S3Client;
  /**
   * Runs `task` with the client of the bucket's region (named by its URL, else the default, else learned
   * from S3's first redirect, once per bucket). `task` may run twice (after a redirect): it must be repeatable.
   * Call it inside {@link S3Access.run}.
   * @example await s3.run(() => s3.send(location, (client) => client.send(new HeadObjectCommand({ Bucket, Key }))));
   */
  send<T>(ref: BucketRef, task: (client: S3Client) => Promise<T>): Promise<T>;
  /** The client of the bucket's region, settled first: for a request that cannot be repeated (a streamed upload). */
  clientFor(ref: BucketRef): Promise<S3Client>;
  readonly stats: S3Stats;
  /** Where requests go, for messages: the custom endpoint, or `https://s3.<region>.amazonaws.com`. */
  readonly endpoint: string;
  readonly maxAttempts: number;
  /** Requests in flight at most (`--s3-concurrency`). */
  readonly concurrency: number;
  /**
   * Runs `task` when a request slot is free. One slot per request: never call `run` from inside a task
   * (with every slot taken, the inner call would wait for itself forever).
   */
  run<T>(task: () => Promise<T>): Promise<T>;
  /**
   * The error to report for a failed call: a one-line {@link UsageError}, or an {@link S3ObjectError} naming
   * `target`. `attempts`: how many times the caller tried, when it retried on its own.
   */
  fail(error: unknown, target: string, attempts?: number): UsageError | S3ObjectError;
  /** Closes idle sockets so the process can exit. */
  close(): void;
}

const DEFAULTS = { concurrency: 16, maxAttempts: 5, requestTimeoutMs: 30_000, region: 'us-east-1' } as const;

/** The SDK's switch for its "your Node version will soon be unsupported" notice (`@aws-sdk/core`). */
const NODE_VERSION_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * Creates the run's S3 client. Nothing is sent yet: an unreachable endpoint or missing credentials surface
 * on the first request, as a one-line {@link UsageError} through {@link S3Access.fail}.
 * @throws {UsageError} naming the option when an option is invalid.
 * @example const s3 = createS3({ endpoint: 'http://127.0.0.1:4568', forcePathStyle: true });
 */
export function createS3(options: S3Options = {}): S3Access {
  const concurrency = positiveInteger(options.concurrency, DEFAULTS.concurrency, '--s3-concurrency');
  const maxAttempts = positiveInteger(options.maxAttempts, DEFAULTS.maxAttempts, 'maxAttempts');
  const requestTimeoutMs = positiveInteger(options.requestTimeoutMs, DEFAULTS.requestTimeoutMs, 'requestTimeoutMs');
  const endpoint = resolveEndpoint(options.endpoint);
  const named = nonEmpty(options.region);

  const config = clientConfig(options, { maxAttempts, requestTimeoutMs, concurrency, endpoint: endpoint?.url });
  const stats: S3Stats = { list: 0, head: 0, put: 0, get: 0 };
  const make = (region: S3ClientConfig['region']): S3Client => countingClient({ ...config, region }, stats);
  // AWS_DEFAULT_REGION is the aws CLI's name, which the JS SDK's chain does not read: kept for those who set it.
  const fromEnv = () => nonEmpty(process.env.AWS_REGION) ?? nonEmpty(process.env.AWS_DEFAULT_REGION);
  const defaultRegion = once(async () => named ?? fromEnv() ?? (await chainRegion()) ?? DEFAULTS.region);
  const client = make(defaultRegion);
  const clients = new Map<string, S3Client>();
  const clientOf = async (region: string): Promise<S3Client> => {
    if (region === (await defaultRegion())) return client;
    let found = clients.get(region);
    if (!found) clients.set(region, (found = make(region)));
    return found;
  };
  const regions = new BucketRegions(defaultRegion, clientOf);

  const limit: LimitFunction = pLimit(concurrency);
  const shown = named ?? fromEnv();
  const label = endpoint?.url ?? (shown ? `https://s3.${shown}.amazonaws.com` : 'https://s3.amazonaws.com');
  return {
    client,
    stats,
    endpoint: label,
    maxAttempts,
    concurrency,
    send: (ref, task) => regions.send(ref, task),
    clientFor: (ref) => regions.clientFor(ref),
    run: (task) => limit(task),
    fail: (error, target, attempts) => toS3Error(error, target, label, attempts),
    close: () => {
      client.destroy();
      for (const other of clients.values()) other.destroy();
    },
  };
}

/** The SDK configuration every client of the run shares (one per region). */
function clientConfig(
  options: S3Options,
  limits: { maxAttempts: number; requestTimeoutMs: number; concurrency: number; endpoint: string | undefined },
): S3ClientConfig {
  const config: S3ClientConfig = {
    maxAttempts: limits.maxAttempts,
    retryMode: 'standard',
    // Each region has its own client (regions.ts): the SDK's redirect following would rewrite a shared one.
    followRegionRedirects: false,
    // Listing pages are read by saxes, not the SDK's XML reader (list-page.ts).
    protocol: ListingProtocol,
    requestHandler: {
      connectionTimeout: Math.min(limits.requestTimeoutMs, 10_000),
      // Inactivity, not total time: a large upload may take long, but a stalled one moves no byte.
      socketTimeout: limits.requestTimeoutMs,
      httpAgent: { keepAlive: true, maxSockets: Math.max(50, limits.concurrency) },
      httpsAgent: { keepAlive: true, maxSockets: Math.max(50, limits.concurrency) },
    },
  };
  if (limits.endpoint !== undefined) {
    config.endpoint = limits.endpoint;
    // S3-compatible stores often reject the SDK's default CRC checksums and streamed (aws-chunked) bodies.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  if (options.forcePathStyle) config.forcePathStyle = true;
  if (options.credentials) config.credentials = options.credentials;
  return config;
}

/** A client that counts the requests of each kind it sends (`S3Access.stats`). */
function countingClient(config: S3ClientConfig, stats: S3Stats): S3Client {
  const made = withoutNodeVersionNotice(() => new S3.S3Client(config));
  made.middlewareStack.add(
    (next, context) => async (args) => {
      const kind = KIND_OF_COMMAND[context.commandName ?? ''];
      if (kind) stats[kind] += 1;
      return next(args);
    },
    { step: 'initialize', name: 'actorSyncRequestCounter' },
  );
  return made;
}

/** The region the SDK's own chain gives (`AWS_REGION`, then the profile's in ~/.aws/config), if any. */
async function chainRegion(): Promise<string | undefined> {
  const probe = withoutNodeVersionNotice(() => new S3.S3Client({}));
  try {
    return nonEmpty(await probe.config.region());
  } catch {
    return undefined; // "Region is missing": nothing configured
  } finally {
    probe.destroy();
  }
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

const KIND_OF_COMMAND: Record<string, keyof S3Stats | undefined> = {
  ListObjectsV2Command: 'list',
  HeadObjectCommand: 'head',
  PutObjectCommand: 'put',
  CreateMultipartUploadCommand: 'put',
  UploadPartCommand: 'put',
  CompleteMultipartUploadCommand: 'put',
  AbortMultipartUploadCommand: 'put',
  GetObjectCommand: 'get',
};

/**
 * Builds the client with the SDK's Node-version notice off. The SDK checks the switch while it builds its
 * runtime config (synchronously, in the constructor) and then marks the notice as shown for the process;
 * the variable is restored at once so nothing else, not even a child process, inherits it. Every other
 * warning still reaches `process.emitWarning` as usual.
 */
function withoutNodeVersionNotice<T>(make: () => T): T {
  const before = process.env[NODE_VERSION_WARNING_SWITCH];
  process.env[NODE_VERSION_WARNING_SWITCH] = 'true';
  try {
    return make();
  } finally {
    if (before === undefined) delete process.env[NODE_VERSION_WARNING_SWITCH];
    else process.env[NODE_VERSION_WARNING_SWITCH] = before;
  }
}

function resolveEndpoint(option: string | undefined): { url: string } | undefined {
  const sources: Array<[string | undefined, string]> = [
    [option, '--endpoint'],
    [process.env.AWS_ENDPOINT_URL_S3, 'AWS_ENDPOINT_URL_S3'],
    [process.env.AWS_ENDPOINT_URL, 'AWS_ENDPOINT_URL'],
  ];
  const found = sources.find(([value]) => nonEmpty(value) !== undefined);
  if (!found) return undefined;
  const [raw, name] = found as [string, string];
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new UsageError(`${name} ${JSON.stringify(raw)} is not a URL; give one like http://127.0.0.1:9000`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`${name} ${JSON.stringify(raw)} must start with http:// or https://`);
  }
  return { url: raw.replace(/\/+$/, '') };
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${name} must be a whole number of at least 1 (got ${String(value)})`);
  }
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
