/**
 * Which region each bucket of a run is in (SPEC §5): the one its URL names, else the client's default (the
 * SDK's chain), and, when S3 answers that the bucket is elsewhere, the region it names, learned once and kept
 * for the run. The first request to a bucket whose region no response has confirmed yet goes alone; the
 * others wait for its answer, so a wrong guess costs one redirect per bucket, never one per object. A region
 * the URL's host names is no guess (it is S3's own address of the object): its requests go at once, which
 * spares every `--remote` run a round trip (scale 1, 16 runs alternating: 0.845 → 0.805 s); when such a URL
 * is wrong all the same, each request then in flight costs one redirect, once. Nothing
 * here rewrites a client's region: each region has a client of its own (the SDK's `followRegionRedirects`
 * rewrites a shared client's region under requests in flight, aws-sdk-js-v3 issue 5554).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { UsageError } from '../errors.js';
import { S3 } from './sdk.js';

/** A bucket, and the region its URL's host names, if any. */
export interface BucketRef {
  bucket: string;
  region?: string;
}

interface SdkFailure {
  name?: string;
  message?: string;
  Region?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

export class BucketRegions {
  /** Buckets whose region a response has confirmed (or named). */
  private readonly confirmed = new Map<string, string>();
  /** Buckets whose first request is in flight: the others wait for it. */
  private readonly first = new Map<string, Promise<void>>();

  constructor(
    /** The client's default region (the SDK's chain, else us-east-1). */
    private readonly fallback: () => Promise<string>,
    private readonly clientOf: (region: string) => Promise<S3Client>,
  ) {}

  /**
   * Runs `task` with the client of `ref`'s bucket region. When S3 answers that the bucket is in another
   * region, that region is kept for the bucket and `task` runs once more there; `task` must be safe to repeat.
   * @throws {UsageError} naming the bucket when S3 says the region is wrong but not which one is right.
   */
  async send<T>(ref: BucketRef, task: (client: S3Client) => Promise<T>): Promise<T> {
    for (;;) {
      const known = this.confirmed.get(ref.bucket);
      if (known !== undefined) return this.attempt(ref, known, task);
      if (ref.region !== undefined) return this.attempt(ref, ref.region, task);
      const pending = this.first.get(ref.bucket);
      if (pending) {
        await pending;
        continue; // confirmed now, or the first request failed before S3 answered: this one goes first
      }
      let settle!: () => void;
      this.first.set(ref.bucket, new Promise<void>((resolve) => (settle = resolve)));
      try {
        return await this.attempt(ref, await this.fallback(), task);
      } finally {
        this.first.delete(ref.bucket);
        settle();
      }
    }
  }

  /**
   * The client for `ref`'s bucket, its region settled first (a HeadBucket when no response has confirmed it
   * and its URL names none): for a request that cannot be repeated, such as a streamed multipart upload.
   */
  async clientFor(ref: BucketRef): Promise<S3Client> {
    const region = await this.send(ref, async (client) => {
      const guessed = await client.config.region();
      if (ref.region !== undefined || this.confirmed.has(ref.bucket)) return guessed;
      const home = (await this.probe(ref.bucket, guessed)) ?? guessed;
      this.confirmed.set(ref.bucket, home);
      return home;
    });
    return this.clientOf(region);
  }

  private async attempt<T>(ref: BucketRef, region: string, task: (client: S3Client) => Promise<T>): Promise<T> {
    try {
      const out = await task(await this.clientOf(region));
      if (!this.confirmed.has(ref.bucket)) this.confirmed.set(ref.bucket, region);
      return out;
    } catch (error) {
      const problem = regionProblem(error) ?? (await this.unsaid(ref.bucket, region, error));
      if (problem === undefined) {
        // Any answer but a region error (404, 403…) comes from the bucket's own region; a 400 that says nothing may not.
        if ((error as SdkFailure | null)?.$metadata?.httpStatusCode !== undefined && !saysNothing(error))
          this.confirmed.set(ref.bucket, region);
        throw error;
      }
      const home = problem.region ?? (await this.probe(ref.bucket, region));
      if (home === undefined || home === region) throw wrongRegion(ref.bucket, region, problem.code);
      this.confirmed.set(ref.bucket, home);
      try {
        return await task(await this.clientOf(home));
      } catch (again) {
        const still = regionProblem(again);
        if (still) throw wrongRegion(ref.bucket, home, still.code);
        throw again;
      }
    }
  }

  /** For a 400 that names neither a code nor a region (a HEAD's): the region problem a HeadBucket then names, if any. */
  private async unsaid(
    bucket: string,
    region: string,
    error: unknown,
  ): Promise<{ code: string; region: string } | undefined> {
    if (!saysNothing(error) || this.confirmed.has(bucket)) return undefined;
    const home = await this.probe(bucket, region);
    if (home === region) this.confirmed.set(bucket, region);
    return home === undefined || home === region ? undefined : { code: '400 Bad Request', region: home };
  }

  /** The bucket's region as a HeadBucket answer states it (AWS sends it whatever the status), if it does. */
  private async probe(bucket: string, region: string): Promise<string | undefined> {
    try {
      const out = await (await this.clientOf(region)).send(new S3.HeadBucketCommand({ Bucket: bucket }));
      return out.BucketRegion ?? region;
    } catch (error) {
      return headerRegion(error);
    }
  }
}

/** What S3 says when a request was signed for a region the bucket is not in; undefined for any other error. */
export function regionProblem(error: unknown): { code: string; region?: string } | undefined {
  const failure = (typeof error === 'object' && error !== null ? error : {}) as SdkFailure;
  const status = failure.$metadata?.httpStatusCode;
  const header = headerRegion(error);
  if (status === 301)
    return {
      code: failure.name && failure.name !== 'Unknown' ? failure.name : '301 Moved Permanently',
      region: header,
    };
  if (failure.name === 'AuthorizationHeaderMalformed' || failure.name === 'IllegalLocationConstraintException') {
    const stated = failure.Region ?? /expecting '([a-z0-9-]+)'/.exec(failure.message ?? '')?.[1];
    return { code: failure.name, region: header ?? stated };
  }
  // A HEAD's 400 has no body to name its code; the header says what it was about.
  if (status === 400 && header !== undefined) return { code: '400 Bad Request', region: header };
  return undefined;
}

/** A 400 with no error code in a body and no `x-amz-bucket-region`: it does not say the region is right. */
function saysNothing(error: unknown): boolean {
  const failure = (error ?? {}) as SdkFailure & { Code?: unknown };
  return (
    failure.$metadata?.httpStatusCode === 400 && typeof failure.Code !== 'string' && headerRegion(error) === undefined
  );
}

function headerRegion(error: unknown): string | undefined {
  const region = (error as SdkFailure | null)?.$response?.headers?.['x-amz-bucket-region'];
  return region === undefined || region === '' ? undefined : region;
}

function wrongRegion(bucket: string, region: string, code: string): UsageError {
  return new UsageError(
    `S3 bucket ${bucket} is not in region ${region} (${code}) and S3 did not say which region it is in; name it in the URL (https://${bucket}.s3.<region>.amazonaws.com/…) or set AWS_REGION`,
  );
}
