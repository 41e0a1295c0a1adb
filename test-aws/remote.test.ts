/**
 * The live S3 suite (`npm run test:aws`): what s3rver and the test proxy can only imitate, against the real
 * bucket ACTOR_SYNC_TEST_BUCKET names, with the standard AWS credential chain. Every key is made under a
 * random prefix and deleted afterwards; nothing else in the bucket is read beyond that prefix or written.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseS3Url } from '../src/shared/s3-url.js';
import { createS3, type S3Access } from '../src/s3/client.js';
import { download, upload } from '../src/s3/transfer.js';
import { verifyUrls } from '../src/s3/verify.js';

const BUCKET = process.env.ACTOR_SYNC_TEST_BUCKET ?? '';
const PREFIX = `actor-sync-test/${randomUUID()}/`;
/** Names that take each key rule: a space, a "+", a "%", a letter outside ASCII. */
const NAMES = ['a b.jpg', 'c+d.jpg', '50%_off.jpg', 'Zoë.jpg'];
const md5 = (bytes: string | Buffer) => createHash('md5').update(bytes).digest('hex');
const raw = (name: string) => parseS3Url(`s3://${BUCKET}/${PREFIX}${name}`);
const https = (encoded: string) => parseS3Url(`https://${BUCKET}.s3.amazonaws.com/${PREFIX}${encoded}`);

let s3: S3Access;
let dir: string;
beforeAll(async () => {
  if (!BUCKET) throw new Error('set ACTOR_SYNC_TEST_BUCKET (npm run test:aws does, or skips)');
  s3 = createS3();
  dir = mkdtempSync(join(tmpdir(), 'actor-sync-aws-'));
  for (const name of NAMES) {
    const path = join(dir, 'up');
    writeFileSync(path, `bytes of ${name}`);
    await upload(s3, raw(name), path, md5(`bytes of ${name}`));
  }
});
afterAll(async () => {
  for (const name of NAMES) {
    const { bucket, key } = raw(name);
    await s3
      ?.run(() => s3.send({ bucket }, (client) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))))
      .catch(() => undefined);
  }
  s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe(`live S3 (s3://${BUCKET}/${PREFIX})`, () => {
  it('verifies every key spelling by listing; an absent key is absent', async () => {
    const urls = [
      raw('50%_off.jpg'),
      https('a+b.jpg'),
      https('c%2Bd.jpg'),
      https('Zo%C3%AB.jpg'),
      raw('Zoe\u0308.jpg'),
      raw('missing.jpg'),
    ];
    const facts = await verifyUrls(s3, urls);
    expect(facts.get(urls[0]!.url)).toMatchObject({ exists: true, md5: md5('bytes of 50%_off.jpg') });
    expect(facts.get(urls[1]!.url)).toMatchObject({
      exists: true,
      md5: md5('bytes of a b.jpg'),
      key: `${PREFIX}a b.jpg`,
    });
    expect(facts.get(urls[2]!.url)).toMatchObject({ exists: true, md5: md5('bytes of c+d.jpg') });
    expect(facts.get(urls[3]!.url)).toMatchObject({ exists: true, md5: md5('bytes of Zoë.jpg') });
    expect(facts.get(urls[4]!.url)).toMatchObject({
      exists: true,
      md5: md5('bytes of Zoë.jpg'),
      key: `${PREFIX}Zoë.jpg`,
    });
    expect(facts.get(urls[5]!.url)).toMatchObject({ exists: false, md5: null });
    expect(s3.stats.head).toBe(0);
  });

  it('with the wrong default region, one request per bucket is redirected; reads and downloads still work', async () => {
    const home = (
      await s3.run(() =>
        s3.send({ bucket: BUCKET }, (client) => client.send(new HeadBucketCommand({ Bucket: BUCKET }))),
      )
    ).BucketRegion;
    const wrong = createS3({ region: home === 'us-east-1' ? 'us-west-2' : 'us-east-1' });
    let sentThere = 0;
    wrong.client.middlewareStack.add((next) => (args) => ((sentThere += 1), next(args)), {
      step: 'build',
      name: 'liveCounter',
    });
    try {
      const urls = NAMES.map((name) => https(encodeURIComponent(name)));
      const facts = await verifyUrls(wrong, urls);
      for (const url of urls) expect(facts.get(url.url)).toMatchObject({ exists: true });
      const got = await download(wrong, raw('a b.jpg'), join(dir, 'down.jpg'));
      expect(got.verified).toBe(true);
      expect(readFileSync(join(dir, 'down.jpg'), 'utf8')).toBe('bytes of a b.jpg');
      expect(sentThere).toBe(1);
    } finally {
      wrong.close();
    }
  });
});
