/**
 * SPEC §5, region per bucket: the region a URL names is used; otherwise the SDK's chain (environment,
 * profile); a bucket elsewhere is learned from S3's first answer and kept for the run: a wrong default costs
 * at most one extra request per bucket, never one per object. Against s3rver behind the AWS-behaviour proxy.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseS3Url, type S3Location } from '../../src/shared/s3-url.js';
import { download, upload } from '../../src/s3/transfer.js';
import { verifyUrls } from '../../src/s3/verify.js';
import { startAwsProxy } from '../helpers/aws-proxy.js';
import { runCli } from '../helpers/cli.js';
import { addImages, manifestPath, readJson, tempRoot } from '../helpers/root.js';
import { S3_ENV } from '../helpers/s3-cli.js';
import { putObject, startS3Server, testS3 } from '../helpers/s3.js';

const WEST = 'story-boards-assets';
const EAST = 'storyboard-user-files';
let upstream: string;
beforeAll(async () => {
  ({ endpoint: upstream } = await startS3Server([WEST, EAST]));
  const seed = testS3(upstream);
  for (let i = 0; i < 40; i += 1) {
    await putObject(seed, WEST, `system_actors/training_data/0000_a/0000_a_${i}.jpg`, `west ${i}`);
    await putObject(seed, EAST, `user/custom_actor/0100_b/training_data/${i}.png`, `east ${i}`);
  }
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** URLs whose host names no region (`<bucket>.s3.amazonaws.com`). */
const unnamed = (bucket: string, keys: (i: number) => string, n = 40): S3Location[] =>
  Array.from({ length: n }, (_, i) => parseS3Url(`https://${bucket}.s3.amazonaws.com/${keys(i)}`));
const westKey = (i: number) => `system_actors/training_data/0000_a/0000_a_${i}.jpg`;
const eastKey = (i: number) => `user/custom_actor/0100_b/training_data/${i}.png`;

describe('a bucket in another region than the client default', () => {
  it('the region the URL names is used: no request is redirected', async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.homeRegion(WEST, 'us-west-1');
    const s3 = testS3(proxy.endpoint, { region: 'us-east-1' });
    const locations = Array.from({ length: 3 }, (_, i) =>
      parseS3Url(`https://${WEST}.s3.us-west-1.amazonaws.com/${westKey(i)}`),
    );
    const facts = await verifyUrls(s3, locations);
    expect([...facts.values()].every((fact) => fact.exists && fact.verifiable)).toBe(true);
    expect(proxy.requests.map((r) => [r.kind, r.signedFor, r.status])).toEqual([['list', 'us-west-1', 200]]);
  });

  /**
   * Three actor folders' URLs naming `region` (one listing each), checked with every request held at the proxy
   * until all three have arrived: none waits for the bucket's first answer. Their facts, then the requests.
   */
  async function threeHeld(region: string, concurrency: number) {
    const proxy = await startAwsProxy(upstream);
    proxy.homeRegion(WEST, 'us-west-1');
    const release = proxy.hold();
    const s3 = testS3(proxy.endpoint, { region: 'us-east-1', concurrency });
    const keys = [
      westKey(0),
      'system_actors/training_data/0001_b/0001_b_0.jpg',
      'system_actors/training_data/0002_c/0002_c_0.jpg',
    ];
    const locations = keys.map((key) => parseS3Url(`https://${WEST}.s3.${region}.amazonaws.com/${key}`));
    try {
      const checking = verifyUrls(s3, locations);
      await vi.waitFor(() => expect(proxy.requests).toHaveLength(3), { timeout: 30_000 });
      release();
      const facts = await checking;
      expect(locations.map((l) => facts.get(l.url)?.exists)).toEqual([true, false, false]);
    } finally {
      release();
    }
    return proxy.requests.map((r) => [r.kind, r.signedFor, r.status]);
  }

  it('URLs that name the region: the requests go at once, none waits for a first answer', async () => {
    expect(await threeHeld('us-west-1', 16)).toEqual(Array(3).fill(['list', 'us-west-1', 200]));
  });

  it('URLs that name a wrong region: each request then in flight is redirected once, and served where S3 says', async () => {
    expect(await threeHeld('eu-west-3', 4)).toEqual([
      ...Array(3).fill(['list', 'eu-west-3', 301]),
      ...Array(3).fill(['list', 'us-west-1', 200]),
    ]);
  });

  it('a URL that names a wrong region, its first answer back before the others go: one redirect in all', async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.homeRegion(WEST, 'us-west-1');
    proxy.denyList(WEST);
    const s3 = testS3(proxy.endpoint, { region: 'us-east-1', concurrency: 4 });
    const locations = Array.from({ length: 12 }, (_, i) =>
      parseS3Url(`https://${WEST}.s3.eu-west-3.amazonaws.com/${westKey(i)}`),
    );
    // One actor folder: one listing, denied after its redirect; the 12 HEADs go where it learned.
    const facts = await verifyUrls(s3, locations, { actorFolders: 1, onWarning: () => undefined });
    expect([...facts.values()].filter((fact) => fact.exists && fact.verifiable)).toHaveLength(12);
    expect(proxy.count('list', 301)).toBe(1);
    expect(proxy.requests.filter((r) => r.status === 301)).toHaveLength(1);
    expect(proxy.count('head', 200)).toBe(12);
  });

  it.each(['redirect', 'malformed'] as const)(
    'answered with %s: one extra request per bucket, 40 HEADs each (no s3:ListBucket)',
    async (answer) => {
      const proxy = await startAwsProxy(upstream);
      proxy.homeRegion(WEST, 'us-west-1', answer);
      proxy.homeRegion(EAST, 'eu-central-1', answer);
      // Without ListBucket every URL gets its own HEAD: the case where one redirect per object would show.
      proxy.denyList(WEST);
      proxy.denyList(EAST);
      const s3 = testS3(proxy.endpoint, { region: 'us-east-1', concurrency: 16 });
      const locations = [...unnamed(WEST, westKey), ...unnamed(EAST, eastKey)];
      const facts = await verifyUrls(s3, locations, { onWarning: () => undefined });
      expect([...facts.values()].filter((fact) => fact.exists && fact.verifiable)).toHaveLength(80);
      const wrong = proxy.requests.filter((r) => r.status === 301 || r.status === 400);
      // The listing's denial, then the HEADs: the first request to each bucket is the one redirected.
      expect(wrong.map((r) => [r.bucket, r.signedFor]).sort()).toEqual(
        [
          [WEST, 'us-east-1'],
          [EAST, 'us-east-1'],
        ].sort(),
      );
      expect(proxy.count('head', 200)).toBe(80);
      expect(
        proxy.requests
          .filter((r) => r.kind === 'head')
          .every((r) => r.signedFor === (r.bucket === WEST ? 'us-west-1' : 'eu-central-1')),
      ).toBe(true);
    },
  );

  it('a multipart upload (not repeatable) settles the region first with one HeadBucket', async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.homeRegion(WEST, 'us-west-1', 'malformed');
    const s3 = testS3(proxy.endpoint, { region: 'us-east-1' });
    const dir = await tempRoot();
    const file = join(dir, 'big.png');
    const bytes = Buffer.alloc(9 * 1024 * 1024, 7);
    writeFileSync(file, bytes);
    await upload(s3, parseS3Url(`https://${WEST}.s3.amazonaws.com/system_actors/big.png`), file, md5(bytes));
    expect(proxy.requests.filter((r) => r.status === 400).map((r) => r.kind)).toEqual(['headBucket']);
    expect(
      proxy.requests.filter((r) => r.kind === 'put').every((r) => r.signedFor === 'us-west-1' && r.status === 200),
    ).toBe(true);
  });

  it("a HEAD's bare 400 (no body, no region header) does not confirm the guessed region: a HeadBucket asks, the HEAD goes to the bucket's", async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.homeRegion(WEST, 'us-west-1', 'malformed');
    const s3 = testS3(proxy.endpoint, { region: 'us-east-1' });
    const [location] = unnamed(WEST, westKey, 1);
    const head = await s3.run(() =>
      s3.send(location!, (client) => client.send(new HeadObjectCommand({ Bucket: WEST, Key: location!.key }))),
    );
    expect(head.$metadata.httpStatusCode).toBe(200);
    expect(proxy.requests.map((r) => [r.kind, r.signedFor, r.status])).toEqual([
      ['head', 'us-east-1', 400],
      ['headBucket', 'us-east-1', 400],
      ['head', 'us-west-1', 200],
    ]);
  });

  it('a bucket whose region S3 does not name: one line naming the region problem, not the credentials (exit 2)', async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.homeRegion(WEST, 'us-west-1', 'malformed-untold');
    const s3 = testS3(proxy.endpoint, { region: 'us-east-1' });
    const error = await verifyUrls(s3, unnamed(WEST, westKey, 3)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(2);
    expect((error as Error).message).toBe(
      `S3 bucket ${WEST} is not in region us-east-1 (AuthorizationHeaderMalformed) and S3 did not say which region it is in; name it in the URL (https://${WEST}.s3.<region>.amazonaws.com/…) or set AWS_REGION`,
    );
    expect((error as Error).message).not.toMatch(/credentials/);
  });

  it('a region error that reaches the reporter unlearned names the region, not the credentials', async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.homeRegion(WEST, 'us-west-1', 'malformed');
    const s3 = testS3(proxy.endpoint, { region: 'us-east-1' });
    // Straight through the default client, past regions.ts: what any caller that skips it would report.
    const raw = await s3.client.send(new ListObjectsV2Command({ Bucket: WEST })).catch((e: unknown) => e);
    const failure = s3.fail(raw, `s3://${WEST}/`);
    expect(failure).toBeInstanceOf(UsageError);
    expect(failure.message).toBe(
      `S3 at ${proxy.endpoint} answered that the bucket of s3://${WEST}/ is not in the region the request was signed for (AuthorizationHeaderMalformed; it is in us-west-1); name the region in the URL or set AWS_REGION`,
    );
  });

  it('uploads and downloads go to the learned region too', async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.homeRegion(EAST, 'eu-central-1');
    const s3 = testS3(proxy.endpoint, { region: 'us-east-1' });
    const dir = await tempRoot();
    const file = join(dir, 'up.png');
    writeFileSync(file, 'uploaded bytes');
    const target = parseS3Url(`https://${EAST}.s3.amazonaws.com/user/custom_actor/0100_b/training_data/up.png`);
    await upload(s3, target, file, md5('uploaded bytes'));
    const got = await download(s3, target, join(dir, 'down.png'));
    expect(got.verified).toBe(true);
    expect(proxy.requests.filter((r) => r.status === 301)).toHaveLength(1);
    expect(proxy.requests.map((r) => [r.kind, r.signedFor, r.status])).toEqual([
      ['put', 'us-east-1', 301],
      ['put', 'eu-central-1', 200],
      ['get', 'eu-central-1', 200],
    ]);
  });
});

describe('a run with the default region wrong', () => {
  it('push of 12 images to a bucket its URLs name no region for: one redirect in the whole run, exit 0', async () => {
    const root = await tempRoot();
    const files: Record<string, number> = {};
    for (let i = 0; i < 12; i += 1) files[`0001_new_${i}.png`] = 1000 + i;
    await addImages(root, '0001_new', files);
    const proxy = await startAwsProxy(upstream);
    proxy.homeRegion(EAST, 'eu-central-1');
    const template = `https://${EAST}.s3.amazonaws.com/user/custom_actor/{actor_name}/{filename}`;
    const r = await runCli(
      [
        'push',
        '--root',
        root,
        '--endpoint',
        proxy.endpoint,
        '--force-path-style',
        '--upload-url-template',
        template,
        '--json',
      ],
      { ...S3_ENV, AWS_REGION: 'us-east-1' },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(proxy.requests.filter((req) => req.status === 301)).toHaveLength(1);
    expect(proxy.count('put', 200)).toBe(12);
    const entries = (await readJson(manifestPath(root, '0001'))).training_data as Array<{ status: string }>;
    expect(entries.map((e) => e.status)).toEqual(Array(12).fill('synced'));
  });
});

describe('the default region comes from the SDK chain', () => {
  it('the profile region in ~/.aws/config, with no AWS_REGION set', async () => {
    const dir = await tempRoot();
    writeFileSync(join(dir, 'config'), '[default]\nregion = eu-north-1\n');
    vi.stubEnv('AWS_CONFIG_FILE', join(dir, 'config'));
    vi.stubEnv('AWS_PROFILE', undefined);
    vi.stubEnv('AWS_REGION', undefined);
    vi.stubEnv('AWS_DEFAULT_REGION', undefined);
    const proxy = await startAwsProxy(upstream);
    const s3 = testS3(proxy.endpoint);
    expect(await s3.client.config.region()).toBe('eu-north-1');
    await verifyUrls(s3, unnamed(WEST, westKey, 1));
    expect(proxy.requests.map((r) => r.signedFor)).toEqual(['eu-north-1']);
  });
});

function md5(bytes: string | Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}
