import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseS3Url, type S3Location } from '../../src/shared/s3-url.js';
import type { S3Access } from '../../src/s3/client.js';
import { S3ObjectError } from '../../src/s3/failures.js';
import { multipartEtag } from '../../src/s3/etag.js';
import { download, PART_SIZE, upload } from '../../src/s3/transfer.js';
import { confirmUrls, verifyUrls } from '../../src/s3/verify.js';
import { crc64nvme } from '../../src/s3/checksum.js';
import {
  kindOf,
  kmsEtag,
  putObject,
  startFaultProxy,
  startS3Server,
  testS3,
  type TestS3Server,
} from '../helpers/s3.js';
import { md5 } from '../helpers/values.js';

const MiB = 1024 * 1024;

let server: TestS3Server;
let s3: S3Access;
let n = 0;
/** A fresh object location per call. */
const fresh = (ext = 'jpg'): S3Location => {
  n += 1;
  return parseS3Url(`${server.endpoint}/assets/system_actors/training_data/0000_x/0000_x_${n}.${ext}`);
};
const dir = mkdtempSync(join(tmpdir(), 'actor-sync-transfer-'));
async function localFile(bytes: Buffer): Promise<string> {
  n += 1;
  const path = join(dir, `local-${n}.jpg`);
  await writeFile(path, bytes);
  return path;
}
/** An empty folder to download into; returns it and a target path inside. */
async function target(): Promise<{ folder: string; path: string }> {
  n += 1;
  const folder = join(dir, `pull-${n}`, 'training_data');
  return { folder, path: join(folder, 'image.jpg') };
}

beforeAll(async () => {
  server = await startS3Server(['assets']);
  s3 = testS3(server.endpoint);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('upload', () => {
  it('puts a small file in one request with its MD5 in the metadata', async () => {
    const bytes = randomBytes(200_000);
    const location = fresh();
    const before = { ...s3.stats };
    const { etag } = await upload(s3, location, await localFile(bytes), md5(bytes));
    expect(etag).toBe(md5(bytes));
    expect(s3.stats.put - before.put).toBe(1);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }));
    expect(head.Metadata).toEqual({ md5: md5(bytes) });
    expect(head.ContentType).toBe('image/jpeg');
  });

  it('uploads a 20 MB file in 8 MiB parts that round-trip, verified by the stored MD5', async () => {
    const bytes = randomBytes(20 * MiB + 12_345);
    const location = fresh('png');
    const before = { ...s3.stats };
    const { etag } = await upload(s3, location, await localFile(bytes), md5(bytes));
    // create + 3 parts + complete. s3rver answers with the MD5 of the whole object, where S3 would give
    // the multipart form (which `multipartEtag` computes; see etag.test.ts).
    expect(s3.stats.put - before.put).toBe(5);
    expect(etag).toBe(md5(bytes));
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }));
    expect(head.Metadata).toEqual({ md5: md5(bytes) });
    expect(head.ContentLength).toBe(bytes.length);

    // With the ETag S3 would have given, verification reads the MD5 from the metadata.
    const proxy = await startFaultProxy(server.endpoint);
    const viaProxy = testS3(proxy.endpoint);
    const s3Etag = multipartEtag(bytes, PART_SIZE);
    expect(s3Etag).toMatch(/-3$/);
    proxy.rewriteEtags((key) => (key === location.key ? s3Etag : undefined));
    const facts = await verifyUrls(viaProxy, [location]);
    expect(facts.get(location.url)).toMatchObject({ exists: true, md5: md5(bytes), etag: s3Etag, verifiable: true });
    expect(viaProxy.stats.head).toBe(1);

    const { path } = await target();
    expect(await download(viaProxy, location, path)).toEqual({
      md5: md5(bytes),
      size: bytes.length,
      verified: true,
      etag: s3Etag,
    });
    expect((await readFile(path)).equals(bytes)).toBe(true);
  });

  it('sends a full-object CRC64NVME checksum with every upload, multipart included, that a HEAD returns and a later check verifies', async () => {
    // The proxy keeps the checksum a write sends, as S3 does (s3rver ignores it).
    const proxy = await startFaultProxy(server.endpoint);
    proxy.kms(() => true);
    const viaProxy = testS3(proxy.endpoint);
    for (const bytes of [randomBytes(200_000), randomBytes(17 * MiB + 5)]) {
      const location = parseS3Url(fresh().url.replace(server.endpoint, proxy.endpoint));
      const seen = proxy.requests.length;
      const uploaded = await upload(viaProxy, location, await localFile(bytes), md5(bytes));
      expect(uploaded.crc64nvme).toBe(await crc64nvme(bytes));
      // The ETag S3 answers (here an SSE-KMS one, from the PUT or the completion) is what is returned.
      expect(uploaded.etag).toBe(kmsEtag(md5(bytes)));
      const head = await viaProxy.client.send(
        new HeadObjectCommand({ Bucket: location.bucket, Key: location.key, ChecksumMode: 'ENABLED' }),
      );
      expect(head.ChecksumCRC64NVME).toBe(uploaded.crc64nvme);
      const kinds = proxy.requests.slice(seen).map(kindOf);
      expect(kinds).toEqual(
        bytes.length > PART_SIZE ? ['create', 'part', 'part', 'part', 'complete', 'head'] : ['put', 'head'],
      );
      // A multipart object whose ETag is no MD5 and whose metadata is lost: the checksum still identifies it.
      proxy.rewriteEtags((key) => (key === location.key ? `${'ab'.repeat(16)}-3` : undefined));
      const [fact] = (await confirmUrls(viaProxy, [location])).values();
      expect(fact).toMatchObject({ exists: true, crc64nvme: uploaded.crc64nvme });
    }
  });

  it('stores nothing when the small file no longer has the MD5 it was hashed with', async () => {
    const location = fresh();
    const before = { ...s3.stats };
    const error = await upload(s3, location, await localFile(Buffer.from('new bytes')), md5('old bytes')).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(S3ObjectError);
    expect((error as Error).message).toMatch(/changed since it was hashed .*run sync again$/);
    expect(s3.stats.put - before.put).toBe(0);
    expect((await verifyUrls(s3, [location])).get(location.url)).toMatchObject({ exists: false });
  });

  it('aborts a multipart upload whose bytes no longer have the MD5, before it completes', async () => {
    const bytes = randomBytes(17 * MiB);
    const location = fresh();
    const error = await upload(s3, location, await localFile(bytes), md5('something else')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3ObjectError);
    expect((error as Error).message).toMatch(/changed since it was hashed/);
    expect((await verifyUrls(s3, [location])).get(location.url)).toMatchObject({ exists: false });
  });
});

describe('download', () => {
  it('writes the object atomically and reports its MD5 as verified', async () => {
    const bytes = randomBytes(300_000);
    const location = fresh();
    await upload(s3, location, await localFile(bytes), md5(bytes));
    const { folder, path } = await target();
    expect(await download(s3, location, path)).toEqual({
      md5: md5(bytes),
      size: bytes.length,
      verified: true,
      etag: md5(bytes),
    });
    expect((await readFile(path)).equals(bytes)).toBe(true);
    expect(await readdir(folder)).toEqual(['image.jpg']);
  });

  it('verifies an object without stored MD5 by its single-part ETag', async () => {
    const location = fresh();
    await putObject(s3, location.bucket, location.key, 'plain bytes');
    const { path } = await target();
    expect(await download(s3, location, path)).toEqual({
      md5: md5('plain bytes'),
      size: 11,
      verified: true,
      etag: md5('plain bytes'),
    });
  });

  it('verifies a multipart object without stored MD5 by recomputing its ETag, else writes it as unverified', async () => {
    const bytes = randomBytes(9 * MiB);
    const known = fresh();
    const unknown = fresh();
    await putObject(s3, known.bucket, known.key, bytes);
    await putObject(s3, unknown.bucket, unknown.key, bytes);
    const proxy = await startFaultProxy(server.endpoint);
    const etags = new Map([
      [known.key, multipartEtag(bytes, PART_SIZE)],
      [unknown.key, `${'ef'.repeat(16)}-2`],
    ]);
    proxy.rewriteEtags((key) => etags.get(key));
    const viaProxy = testS3(proxy.endpoint);
    expect(await download(viaProxy, known, (await target()).path)).toEqual({
      md5: md5(bytes),
      size: bytes.length,
      verified: true,
      etag: etags.get(known.key),
    });
    const { path } = await target();
    expect(await download(viaProxy, unknown, path)).toEqual({
      md5: md5(bytes),
      size: bytes.length,
      verified: false,
      etag: etags.get(unknown.key),
    });
    expect((await readFile(path)).equals(bytes)).toBe(true);
  });

  it('writes nothing when the bytes do not have the MD5 S3 states', async () => {
    const location = fresh();
    await putObject(s3, location.bucket, location.key, 'actual bytes', { md5: md5('other bytes') });
    const { folder, path } = await target();
    await mkdir(folder, { recursive: true });
    const error = await download(s3, location, path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3ObjectError);
    expect((error as Error).message).toContain(
      `downloaded bytes have MD5 ${md5('actual bytes')} but S3 states ${md5('other bytes')}; nothing was written`,
    );
    expect(await readdir(folder)).toEqual([]);
  });

  it('never overwrites an existing file', async () => {
    const location = fresh();
    await putObject(s3, location.bucket, location.key, 'remote');
    const { folder, path } = await target();
    await mkdir(folder, { recursive: true });
    await writeFile(path, 'local');
    const before = { ...s3.stats };
    await expect(download(s3, location, path)).rejects.toThrow(/already exists \(it is never overwritten\)/);
    expect(await readFile(path, 'utf8')).toBe('local');
    expect(s3.stats.get - before.get).toBe(0);
    await download(s3, location, path, { overwrite: true });
    expect(await readFile(path, 'utf8')).toBe('remote');
  });

  it('reports a missing object for that image, writing nothing', async () => {
    const location = fresh();
    const { folder, path } = await target();
    await mkdir(folder, { recursive: true });
    const error = await download(s3, location, path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(S3ObjectError);
    expect((error as S3ObjectError).code).toBe('NoSuchKey');
    expect((error as Error).message).toMatch(
      new RegExp(`^${location.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: failed \\(NoSuchKey, HTTP 404 Not Found\\)`),
    );
    await expect(readdir(folder)).resolves.toEqual([]);
  });
});
