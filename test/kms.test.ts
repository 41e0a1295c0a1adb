/**
 * SPEC §5, what an ETag proves: on an SSE-KMS bucket an object's ETag is 32 hex digits that are not its MD5.
 * The test proxy plays KMS in front of s3rver (a non-MD5 ETag in listings, HEAD, GET and PUT responses,
 * `x-amz-server-side-encryption: aws:kms`), keeps the CRC64NVME checksums writes send, and counts requests.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crc64nvme } from '../src/s3/checksum.js';
import { SyncSummarySchema, TransferSummarySchema } from '../src/engine/summary.js';
import { run } from './helpers/s3-cli.js';
import { kmsEtag, putObject, startFaultProxy, startS3Server, testS3 } from './helpers/s3.js';
import {
  manifestPath,
  md5,
  readJson,
  SEED_LISTED,
  SEED_NAME,
  seedActor0000,
  tempRoot,
  trainingDir,
} from './helpers/root.js';

const BUCKET = 'story-boards-assets';
const key = (file: string) => `system_actors/training_data/${SEED_NAME}/${file}`;
const listed = (n: number, ext = 'png') => SEED_LISTED.find((f) => f === `${SEED_NAME}_${n}.${ext}`)!;

/**
 * The seed's actor on a KMS bucket: its 12 listed images in S3, each with the MD5 this tool stores in the
 * metadata, but `_11` (uploaded by another tool: no metadata, no checksum), `_12` (with a CRC64NVME checksum
 * and no metadata, as another SDK uploads) and `_13` (other bytes, as another machine left them).
 */
async function kmsBucket() {
  const root = await tempRoot();
  await seedActor0000(root);
  const server = await startS3Server([BUCKET]);
  const proxy = await startFaultProxy(server.endpoint);
  proxy.kms(() => true);
  const s3 = testS3(proxy.endpoint);
  const dir = trainingDir(root, SEED_NAME);
  for (const file of SEED_LISTED) {
    const bytes = file === listed(13) ? Buffer.from('bytes another machine left') : readFileSync(join(dir, file));
    if (file === listed(11)) await putObject(s3, BUCKET, key(file), bytes);
    else if (file === listed(12)) {
      const command = new PutObjectCommand({
        Bucket: BUCKET,
        Key: key(file),
        Body: bytes,
        ChecksumCRC64NVME: await crc64nvme(bytes),
      });
      await s3.run(() => s3.client.send(command));
    } else await putObject(s3, BUCKET, key(file), bytes, { md5: md5(bytes) });
  }
  const flags = ['--endpoint', proxy.endpoint, '--force-path-style'];
  const entries = async () => (await readJson(manifestPath(root, '0000'))).training_data as any[];
  const entry = async (file: string) => (await entries()).find((e) => e.filename === file);
  return { root, server, proxy, flags, dir, entries, entry };
}

describe('an SSE-KMS bucket', () => {
  it('sync --remote: a KMS ETag is never taken for the MD5; the stored MD5 or the checksum decides, one HEAD each the first time, none once recorded', async () => {
    const { root, proxy, flags, entry } = await kmsBucket();
    const first = await run(['sync', '--root', root, '--remote', ...flags, '--json']);
    expect(first.code, first.stderr).toBe(0);
    // _11 alone cannot be verified: it keeps what a sync without --remote assumes, with one warning.
    expect(first.stderr.trim().split('\n')).toEqual([
      `warning: ${SEED_NAME}: https://story-boards-assets.s3.us-west-1.amazonaws.com/${key(listed(11))}: cannot be verified (an SSE-KMS object without a stored MD5 or a checksum); treated as a URL never verified`,
    ]);
    const summary = SyncSummarySchema.parse(JSON.parse(first.stdout));
    expect(summary.totals).toMatchObject({ synced: 11, out_of_sync: 1 });
    // Every listed ETag differs from its local MD5, so each object was HEADed once.
    expect(summary.s3_requests).toMatchObject({ list: 1, head: 12, get: 0, put: 0 });
    expect(proxy.count('head')).toBe(12);
    const four = await entry(listed(4));
    expect(four).toMatchObject({ status: 'synced', s3_md5: four.md5_hash, s3_etag: kmsEtag(four.md5_hash) });
    expect((await entry(listed(12))).status).toBe('synced');
    const thirteen = await entry(listed(13));
    expect(thirteen).toMatchObject({ status: 'out_of_sync', s3_md5: md5(Buffer.from('bytes another machine left')) });

    // The next check: every recorded ETag is the listed one, so nothing but the listing is sent (and _11, never
    // verified, is HEADed again).
    const heads = proxy.count('head');
    const second = await run(['sync', '--root', root, '--remote', ...flags, '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(SyncSummarySchema.parse(JSON.parse(second.stdout)).s3_requests).toMatchObject({ list: 1, head: 1 });
    expect(proxy.count('head') - heads).toBe(1);
    expect(SyncSummarySchema.parse(JSON.parse(second.stdout)).totals).toMatchObject({ synced: 11, out_of_sync: 1 });
  });

  it('push --repair run twice uploads the one image that differs, then nothing; check --remote --require-synced passes', async () => {
    const { root, proxy, flags, dir, entry } = await kmsBucket();
    expect((await run(['sync', '--root', root, '--remote', ...flags])).code).toBe(0);
    const seen = proxy.requests.length;
    const repaired = await run(['push', '--root', root, '--repair', ...flags, '--json']);
    expect(repaired.code, repaired.stderr).toBe(0);
    const uploads = TransferSummarySchema.parse(JSON.parse(repaired.stdout)).transfers.map((t) => t.filename);
    // The 5 images without a URL, and _13, sent over the object its check saw (If-Match: its KMS ETag).
    expect(uploads).toHaveLength(6);
    expect(uploads).toContain(listed(13));
    const thirteen = await entry(listed(13));
    expect(thirteen).toMatchObject({
      status: 'synced',
      s3_md5: thirteen.md5_hash,
      s3_etag: kmsEtag(thirteen.md5_hash),
    });
    expect(proxy.requests.slice(seen).filter((r) => r.method === 'PUT' && r.url.includes(listed(13)))).toEqual([
      expect.objectContaining({
        condition: `If-Match: "${kmsEtag(md5(Buffer.from('bytes another machine left')))}"`,
        status: 200,
      }),
    ]);

    // The checksum the upload sent is recorded next to the MD5, and a later check keeps it.
    const checksum = await crc64nvme(readFileSync(join(dir, listed(13))));
    expect(thirteen.s3_crc64nvme).toBe(checksum);
    expect((await run(['sync', '--root', root, '--remote', ...flags])).code).toBe(0);
    expect((await entry(listed(13))).s3_crc64nvme).toBe(checksum);
    const puts = proxy.count('put');
    const again = await run(['push', '--root', root, '--repair', ...flags, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(TransferSummarySchema.parse(JSON.parse(again.stdout)).transfers).toEqual([]);
    expect(proxy.count('put')).toBe(puts);
    const check = await run(['check', '--root', root, '--remote', '--require-synced', ...flags]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });

  it('pull verifies a KMS object by its stored MD5 or its checksum, and writes one with neither as unverified, never failing on its ETag', async () => {
    const { root, flags, dir, entry } = await kmsBucket();
    const files = [listed(4), listed(11), listed(12)];
    const originals = files.map((file) => readFileSync(join(dir, file)));
    for (const file of files) rmSync(join(dir, file));
    const pulled = await run(['pull', '--root', root, ...flags, '--json']);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stderr).not.toMatch(/but S3 states/);
    const summary = TransferSummarySchema.parse(JSON.parse(pulled.stdout));
    expect(summary.transfers.map((t) => [t.filename, t.error])).toEqual(files.map((file) => [file, undefined]));
    files.forEach((file, i) => expect(readFileSync(join(dir, file)).equals(originals[i]!), file).toBe(true));
    for (const file of files) {
      const pulledEntry = await entry(file);
      expect(pulledEntry).toMatchObject({
        status: 'synced',
        s3_md5: pulledEntry.md5_hash,
        s3_etag: kmsEtag(pulledEntry.md5_hash),
      });
    }
    // The checksum S3 returned is recorded next to the MD5.
    expect((await entry(listed(12))).s3_crc64nvme).toBe(await crc64nvme(originals[2]!));
  });

  it('a KMS object without a checksum or stored MD5, its local file edited: never judged by its ETag, the last known state stands (the bytes it was taken to hold)', async () => {
    const { root, flags, dir, entry } = await kmsBucket();
    expect((await run(['sync', '--root', root, '--remote', ...flags])).code).toBe(0);
    writeFileSync(join(dir, listed(11)), 'edited locally');
    const r = await run(['sync', '--root', root, '--remote', ...flags]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `${key(listed(11))}: cannot be verified (an SSE-KMS object without a stored MD5 or a checksum); its last known state is kept`,
    );
    // Its last known state: the object held the file as it was before the edit.
    const eleven = await entry(listed(11));
    expect(eleven.status).toBe('out_of_sync');
    expect(eleven.s3_md5).not.toBe(eleven.md5_hash);
  });
});
