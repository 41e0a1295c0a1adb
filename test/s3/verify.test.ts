import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { parseS3Url, type S3Location } from '../../src/shared/s3-url.js';
import type { S3Access } from '../../src/s3/client.js';
import { upload } from '../../src/s3/transfer.js';
import { confirmUrls, verifyUrls } from '../../src/s3/verify.js';
import { crc64nvme } from '../../src/s3/checksum.js';
import { kmsEtag, putObject, startFaultProxy, startS3Server, testS3, type TestS3Server } from '../helpers/s3.js';
import { md5 } from '../helpers/values.js';

const USER = '7f3c2a9e-1b2d-4c5e-8f90-123456789abc';

let server: TestS3Server;
let s3: S3Access;
let url: (bucket: string, key: string) => string;
beforeAll(async () => {
  server = await startS3Server(['assets', 'other-assets']);
  s3 = testS3(server.endpoint);
  url = (bucket, key) => `${server.endpoint}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
});

const dir = mkdtempSync(join(tmpdir(), 'actor-sync-verify-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('verifyUrls', () => {
  it('finds present objects with their MD5, and absent ones as not existing', async () => {
    const key = 'system_actors/training_data/0000_european_16_male/0000_european_16_male_0.jpg';
    await putObject(s3, 'assets', key, 'image zero');
    const present = url('assets', key);
    const absent = url('assets', 'system_actors/training_data/0000_european_16_male/0000_european_16_male_1.jpg');
    const facts = await verifyUrls(s3, [present, absent].map(parseS3Url));

    expect(facts.get(present)).toMatchObject({
      exists: true,
      md5: md5('image zero'),
      etag: md5('image zero'),
      size: 10,
      verifiable: true,
    });
    expect(facts.get(absent)).toMatchObject({ exists: false, md5: null, verifiable: true });
    expect(Date.parse(facts.get(present)!.checkedAt)).not.toBeNaN();
  });

  it('reports the MD5 of the bytes S3 holds now, so changed bytes show', async () => {
    const key = 'system_actors/training_data/0001_changed/0001_changed_0.jpg';
    await putObject(s3, 'assets', key, 'before');
    const location = parseS3Url(url('assets', key));
    expect((await verifyUrls(s3, [location])).get(location.url)?.md5).toBe(md5('before'));
    await putObject(s3, 'assets', key, 'after');
    expect((await verifyUrls(s3, [location])).get(location.url)?.md5).toBe(md5('after'));
  });

  it('checks two buckets and both key layouts in one call', async () => {
    const keys = [
      ['assets', 'system_actors/training_data/0002_a/0002_a_0.jpg'],
      ['assets', `${USER}/custom_actor/0003_b/training_data/0003_b_0.png`],
      ['other-assets', 'system_actors/training_data/0004_c/0004_c_0.jpg'],
      ['other-assets', `${USER}/custom_actor/0005_d/training_data/0005_d_0.png`],
    ] as const;
    for (const [bucket, key] of keys) await putObject(s3, bucket, key, `${bucket}/${key}`);
    const missing = url('other-assets', `${USER}/custom_actor/0005_d/training_data/0005_d_9.png`);
    const urls = [...keys.map(([bucket, key]) => url(bucket, key)), missing];

    for (const actorFolders of [2, 100]) {
      const facts = await verifyUrls(s3, urls.map(parseS3Url), { actorFolders });
      keys.forEach(([bucket, key], i) =>
        expect(facts.get(urls[i]!)).toMatchObject({ exists: true, md5: md5(`${bucket}/${key}`), verifiable: true }),
      );
      expect(facts.get(missing)).toMatchObject({ exists: false, md5: null });
    }
  });

  it('matches keys however an https URL percent-encodes them (an s3:// URI is the raw key)', async () => {
    await putObject(s3, 'assets', 'system_actors/training_data/0006_e/0006 e+1.jpg', 'spaced');
    const spellings = [
      `${server.endpoint}/assets/system_actors/training_data/0006_e/0006%20e%2B1.jpg`,
      `${server.endpoint}/assets/system_actors/training_data/0006_e/0006%20e+1.jpg`,
      `${server.endpoint}/assets/system_actors/training_data/0006_%65/0006%20%65%2b1.jpg`,
      's3://assets/system_actors/training_data/0006_e/0006 e+1.jpg', // a raw key
    ];
    const facts = await verifyUrls(s3, spellings.map(parseS3Url));
    for (const spelling of spellings) expect(facts.get(spelling)).toMatchObject({ exists: true, md5: md5('spaced') });
  });

  it('takes a multipart object’s MD5 from the metadata its upload stored (one HEAD), else calls it unverifiable', async () => {
    // s3rver never gives S3's multipart form, so the proxy rewrites the ETags to it.
    const proxy = await startFaultProxy(server.endpoint);
    const client = testS3(proxy.endpoint);
    const bytes = randomBytes(1000);
    const path = join(dir, 'mp.jpg');
    await writeFile(path, bytes);
    const ours = parseS3Url(url('assets', 'system_actors/training_data/0007_mp/ours.jpg'));
    const foreign = parseS3Url(url('assets', 'system_actors/training_data/0007_mp/foreign.jpg'));
    const plain = parseS3Url(url('assets', 'system_actors/training_data/0007_mp/plain.jpg'));
    await upload(client, ours, path, md5(bytes));
    await putObject(client, 'assets', foreign.key, bytes);
    await putObject(client, 'assets', plain.key, 'plain');
    const multipart = new Set([ours.key, foreign.key]);
    proxy.rewriteEtags((key) => (multipart.has(key) ? `${'ab'.repeat(16)}-3` : undefined));

    const before = { ...client.stats };
    const facts = await verifyUrls(client, [ours, foreign, plain]);
    expect(facts.get(ours.url)).toMatchObject({ exists: true, md5: md5(bytes), verifiable: true });
    expect(facts.get(foreign.url)).toMatchObject({ exists: true, md5: null, verifiable: false });
    expect(facts.get(foreign.url)?.error).toBeUndefined();
    expect(facts.get(plain.url)).toMatchObject({ exists: true, md5: md5('plain'), verifiable: true });
    expect(client.stats.list - before.list).toBe(1);
    expect(client.stats.head - before.head).toBe(2);
  });

  it('deferHeads: facts from the listing alone, marked fromListing, for the caller to confirm', async () => {
    const proxy = await startFaultProxy(server.endpoint);
    const client = testS3(proxy.endpoint);
    const plain = parseS3Url(url('assets', 'system_actors/training_data/0008_d/plain.jpg'));
    const parts = parseS3Url(url('assets', 'system_actors/training_data/0008_d/parts.jpg'));
    await putObject(client, 'assets', plain.key, 'plain');
    await putObject(client, 'assets', parts.key, 'parts');
    proxy.rewriteEtags((key) => (key === parts.key ? `${'ab'.repeat(16)}-2` : undefined));
    const facts = await verifyUrls(client, [plain, parts], { deferHeads: true });
    expect(facts.get(plain.url)).toMatchObject({ exists: true, md5: md5('plain'), fromListing: true });
    expect(facts.get(parts.url)).toMatchObject({
      exists: true,
      md5: null,
      etag: `${'ab'.repeat(16)}-2`,
      fromListing: true,
    });
    expect(proxy.count('head')).toBe(0);
  });

  it('confirmUrls: one HEAD per object tells a KMS ETag from an MD5, and finds the stored MD5 or the checksum', async () => {
    const proxy = await startFaultProxy(server.endpoint);
    const client = testS3(proxy.endpoint);
    const at = (name: string) => parseS3Url(url('assets', `system_actors/training_data/0009_k/${name}.jpg`));
    const [stored, summed, sealed, plain] = ['stored', 'summed', 'sealed', 'plain'].map(at) as [
      S3Location,
      S3Location,
      S3Location,
      S3Location,
    ];
    await putObject(client, 'assets', stored.key, 'stored', { md5: md5('stored') });
    const checksum = await crc64nvme(Buffer.from('summed'));
    await client.run(() =>
      client.client.send(
        new PutObjectCommand({
          Bucket: 'assets',
          Key: summed.key,
          Body: Buffer.from('summed'),
          ChecksumCRC64NVME: checksum,
        }),
      ),
    );
    await putObject(client, 'assets', sealed.key, 'sealed');
    // An unencrypted object's ETag is its MD5, whatever its metadata says.
    await putObject(client, 'assets', plain.key, 'plain', { md5: md5('something else') });
    proxy.kms((key) => key !== plain.key);

    const seen = proxy.count('head');
    // Two spellings of one key share the HEAD.
    const facts = await confirmUrls(client, [stored, summed, sealed, plain, { ...plain, url: `${plain.url}?v=1` }]);
    expect(proxy.count('head') - seen).toBe(4);
    expect(facts.get(stored.url)).toMatchObject({
      exists: true,
      md5: md5('stored'),
      etag: kmsEtag(md5('stored')),
      verifiable: true,
    });
    expect(facts.get(summed.url)).toMatchObject({ exists: true, md5: null, crc64nvme: checksum, verifiable: false });
    expect(facts.get(summed.url)?.unverifiable).toBeUndefined();
    expect(facts.get(sealed.url)).toMatchObject({
      exists: true,
      md5: null,
      verifiable: false,
      unverifiable: 'an SSE-KMS object without a stored MD5 or a checksum',
    });
    expect(facts.get(plain.url)).toMatchObject({ exists: true, md5: md5('plain'), verifiable: true });
    expect(facts.get(`${plain.url}?v=1`)).toEqual(facts.get(plain.url));
  });
});
