/**
 * SPEC §5: throttling, 5xx and timeouts are retried with backoff; what still fails is reported per image
 * and never recorded as synced. A fault-injecting proxy sits between the client and s3rver. Bounded in
 * time: 3 attempts; a stalled response is never answered, so only the tests of a stall use a short (but
 * realistic) inactivity timeout, and every other request has the production one: s3rver shares this
 * process and its cores, and a healthy request that timed out would add one to the request sequences checked.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseS3Url, type S3Location } from '../../src/shared/s3-url.js';
import type { S3Access } from '../../src/s3/client.js';
import { S3ObjectError } from '../../src/s3/failures.js';
import { download, upload } from '../../src/s3/transfer.js';
import { startListing } from '../../src/s3/list.js';
import { folderOf } from '../../src/s3/prefixes.js';
import { verifyUrls } from '../../src/s3/verify.js';
import {
  putObject,
  startFaultProxy,
  startS3Server,
  testS3,
  type FaultProxy,
  type ProxyRequest,
  type TestS3Server,
} from '../helpers/s3.js';
import { escapeRegExp, md5 } from '../helpers/values.js';

const isList = (r: ProxyRequest) => r.method === 'GET' && /[?&]list-type=2/.test(r.url);
const isGet = (r: ProxyRequest) => r.method === 'GET' && !/[?&]list-type=/.test(r.url);
const isPut = (r: ProxyRequest) => r.method === 'PUT';
const isHead = (r: ProxyRequest) => r.method === 'HEAD';

let server: TestS3Server;
let direct: S3Access;
let proxy: FaultProxy;
/** Through the proxy, with the helper's production timeout. */
let s3: S3Access;
/**
 * Through the proxy, for the tests of a stall: the stalled request times out after this much inactivity.
 * Seconds, not milliseconds: a healthy request in the same test must never reach it, even on a loaded machine.
 */
let stallable: S3Access;
const STALL_TIMEOUT_MS = 5_000;
let n = 0;
const dir = mkdtempSync(join(tmpdir(), 'actor-sync-faults-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

beforeAll(async () => {
  server = await startS3Server(['assets', 'other']);
  direct = testS3(server.endpoint);
});
beforeEach(async () => {
  proxy = await startFaultProxy(server.endpoint);
  s3 = testS3(proxy.endpoint, { maxAttempts: 3 });
  stallable = testS3(proxy.endpoint, { maxAttempts: 3, requestTimeoutMs: STALL_TIMEOUT_MS });
});

/** A new object (stored directly, with its MD5 in the metadata) and its location as seen through the proxy. */
async function stored(
  bucket = 'assets',
  body: string | Buffer = `body ${n}`,
): Promise<{ location: S3Location; md5: string }> {
  n += 1;
  const key = `system_actors/training_data/${String(n).padStart(4, '0')}_a/${n}.jpg`;
  await putObject(direct, bucket, key, body, { md5: md5(body) });
  return { location: parseS3Url(`${proxy.endpoint}/${bucket}/${key}`), md5: md5(body) };
}

async function localFile(bytes: Buffer): Promise<string> {
  n += 1;
  const path = join(dir, `local-${n}.jpg`);
  await writeFile(path, bytes);
  return path;
}

describe('transient faults are retried', () => {
  it.each([
    ['HTTP 500', 'http500'],
    ['503 SlowDown', 'slowDown'],
    ['a reset connection', 'reset'],
    ['a stalled response', 'stall'],
  ] as const)('a listing survives %s twice', async (_, fault) => {
    const { location, md5: expected } = await stored();
    proxy.inject(fault, 2, isList);
    const client = fault === 'stall' ? stallable : s3;
    const facts = await verifyUrls(client, [location]);
    expect(facts.get(location.url)).toMatchObject({ exists: true, md5: expected, verifiable: true });
    expect(proxy.requests.filter(isList).map((r) => r.fault)).toEqual([fault, fault, undefined]);
    expect(client.stats.list).toBe(1);
  });

  it('an upload survives 503 SlowDown and a stalled response', async () => {
    const bytes = randomBytes(50_000);
    n += 1;
    const location = parseS3Url(`${proxy.endpoint}/assets/push/${n}.jpg`);
    proxy.inject('slowDown', 1, isPut);
    proxy.inject('stall', 1, isPut);
    expect(await upload(stallable, location, await localFile(bytes), md5(bytes))).toMatchObject({ etag: md5(bytes) });
    expect(proxy.requests.filter(isPut).map((r) => r.fault)).toEqual(['slowDown', 'stall', undefined]);
    expect((await verifyUrls(direct, [location])).get(location.url)).toMatchObject({ exists: true, md5: md5(bytes) });
  });

  it('a download survives a 500, a reset connection and a body cut off halfway, within its attempts', async () => {
    const body = randomBytes(100_000);
    const { location } = await stored('assets', body);
    proxy.inject('http500', 1, isGet);
    proxy.inject('reset', 1, isGet);
    proxy.inject('truncate', 1, isGet);
    const path = join(dir, `pull-${n}.jpg`);
    // Four requests in all: the SDK's three (500, reset, a response), then one more for the body cut off.
    expect(await download(testS3(proxy.endpoint, { maxAttempts: 4 }), location, path)).toMatchObject({
      md5: md5(body),
      size: body.length,
      verified: true,
    });
    expect((await readFile(path)).equals(body)).toBe(true);
    expect(proxy.requests.filter(isGet).map((r) => r.fault)).toEqual(['http500', 'reset', 'truncate', undefined]);
  });
});

describe('persistent failures are reported per image, never as synced', () => {
  it('a listing that keeps failing leaves its images unverifiable, with the reason; other buckets are verified', async () => {
    const failing = await stored('assets');
    const fine = await stored('other');
    proxy.inject('http500', Infinity, (r) => isList(r) && r.url.startsWith('/assets'));
    const facts = await verifyUrls(s3, [failing.location, fine.location]);

    expect(facts.get(failing.location.url)).toMatchObject({ exists: true, md5: null, verifiable: false });
    expect(facts.get(failing.location.url)?.error).toMatch(
      /^s3:\/\/assets\/.*: failed after 3 attempts \(InternalError, HTTP 500 Internal Server Error\): We encountered an internal error/,
    );
    expect(facts.get(fine.location.url)).toMatchObject({ exists: true, md5: fine.md5, verifiable: true });
    expect(proxy.requests.filter((r) => isList(r) && r.url.startsWith('/assets'))).toHaveLength(3);
  });

  it('an early listing that the plan takes and that keeps failing: its images unverifiable, with the reason', async () => {
    const { location } = await stored();
    proxy.inject('http500', Infinity, isList);
    // Many actors selected: the plan is the shared prefix, here the one key's folder, which the early listing is.
    const early = startListing(s3, { bucket: location.bucket, prefix: folderOf(location.key) });
    const fact = (await verifyUrls(s3, [location], { actorFolders: 100, early: [early] })).get(location.url);
    expect(fact).toMatchObject({ exists: true, md5: null, verifiable: false, checkedAt: early.checkedAt });
    expect(fact?.error).toMatch(
      new RegExp(
        `^s3://assets/${escapeRegExp(folderOf(location.key))}: failed after 3 attempts \\(InternalError, HTTP 500`,
      ),
    );
    expect(proxy.requests.filter(isList)).toHaveLength(3);
  });

  it('a HEAD that keeps being throttled leaves that multipart object unverifiable', async () => {
    const { location } = await stored();
    proxy.rewriteEtags((key) => (key === location.key ? `${'cd'.repeat(16)}-2` : undefined));
    proxy.inject('slowDown', Infinity, isHead);
    const fact = (await verifyUrls(s3, [location])).get(location.url);
    expect(fact).toMatchObject({ exists: true, md5: null, verifiable: false });
    expect(fact?.error).toMatch(/: failed after 3 attempts \(HTTP 503 Service Unavailable\)$/);
  });

  it('an upload that keeps stalling fails with a timeout for that image and stores nothing', async () => {
    const bytes = randomBytes(10_000);
    n += 1;
    const location = parseS3Url(`${proxy.endpoint}/assets/push/${n}.jpg`);
    proxy.inject('stall', Infinity, isPut);
    const error = await upload(stallable, location, await localFile(bytes), md5(bytes)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3ObjectError);
    expect((error as Error).message).toMatch(
      new RegExp(`^${escapeRegExp(location.url)}: failed after 3 attempts \\(TimeoutError\\)`),
    );
    expect((await verifyUrls(direct, [location])).get(location.url)).toMatchObject({ exists: false });
  });

  it('a download that keeps being cut off writes nothing', async () => {
    const { location } = await stored('assets', randomBytes(100_000));
    proxy.inject('truncate', Infinity, isGet);
    const folder = join(dir, `pull-folder-${n}`);
    await mkdir(folder);
    const error = await download(s3, location, join(folder, 'x.jpg')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3ObjectError);
    expect((error as Error).message).toMatch(
      new RegExp(`^${escapeRegExp(location.url)}: failed after 3 attempts \\(ECONNRESET\\)`),
    );
    expect(await readdir(folder)).toEqual([]);
    expect(proxy.requests.filter(isGet)).toHaveLength(3);
  });
});

describe('one retry layer: an object gets maxAttempts requests at most, the SDK retries included', () => {
  it.each([
    ['a reset connection', 'reset'],
    ['HTTP 500', 'http500'],
  ] as const)(
    'a download that keeps getting %s: exactly maxAttempts GETs, then one error for that image',
    async (_, fault) => {
      const { location } = await stored('assets', randomBytes(10_000));
      proxy.inject(fault, Infinity, isGet);
      const folder = join(dir, `pull-folder-${n}`);
      await mkdir(folder);
      const error = await download(s3, location, join(folder, 'x.jpg')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(S3ObjectError);
      expect((error as Error).message).toMatch(
        new RegExp(`^${escapeRegExp(location.url)}: failed after 3 attempts \\(`),
      );
      expect(proxy.requests.filter(isGet)).toHaveLength(3);
      expect(await readdir(folder)).toEqual([]);
    },
  );

  it('a body cut off, then a persistent 500: the attempts of the fetch again are those left', async () => {
    const { location } = await stored('assets', randomBytes(10_000));
    proxy.inject('truncate', 1, isGet);
    proxy.inject('http500', Infinity, isGet);
    const error = await download(s3, location, join(dir, `pull-${n}-cut.jpg`)).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      new RegExp(`^${escapeRegExp(location.url)}: failed after 3 attempts \\(InternalError, HTTP 500`),
    );
    expect(proxy.requests.filter(isGet).map((r) => r.fault)).toEqual(['truncate', 'http500', 'http500']);
  });

  it('an upload that keeps getting HTTP 500: exactly maxAttempts PUTs', async () => {
    const bytes = randomBytes(10_000);
    n += 1;
    const location = parseS3Url(`${proxy.endpoint}/assets/push/${n}.jpg`);
    proxy.inject('http500', Infinity, isPut);
    const error = await upload(s3, location, await localFile(bytes), md5(bytes)).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/failed after 3 attempts \(InternalError, HTTP 500/);
    expect(proxy.requests.filter(isPut)).toHaveLength(3);
  });
});
