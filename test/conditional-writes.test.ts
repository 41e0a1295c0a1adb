/**
 * SPEC §5, never overwrite what was not seen: push sends `If-None-Match: *` for a `local_only` image and
 * `If-Match: <the ETag its check saw>` with --repair. The test proxy enforces both (412), as S3 does and
 * s3rver does not, or answers 501 NotImplemented as a store without conditional writes.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TransferSummarySchema } from '../src/engine/summary.js';
import { run } from './helpers/s3-cli.js';
import { putObject, startFaultProxy, startS3Server, testS3, type FaultProxy } from './helpers/s3.js';
import {
  addImages,
  manifestPath,
  readJson,
  SEED_BASE,
  SEED_LISTED,
  SEED_NAME,
  seedActor0000,
  tempRoot,
  trainingDir,
} from './helpers/root.js';

const BUCKET = 'story-boards-assets';
const key = (file: string) => `system_actors/training_data/${SEED_NAME}/${file}`;
const urlOf = (file: string) => `${SEED_BASE}/${SEED_NAME}/${file}`;

async function setUp() {
  const root = await tempRoot();
  await seedActor0000(root);
  const server = await startS3Server([BUCKET]);
  const proxy = await startFaultProxy(server.endpoint);
  const direct = testS3(server.endpoint);
  const flags = ['--endpoint', proxy.endpoint, '--force-path-style'];
  const bytesAt = async (file: string) => {
    const object = await direct.run(() => direct.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key(file) })));
    return Buffer.from(await object.Body!.transformToByteArray()).toString();
  };
  const entry = async (file: string) =>
    ((await readJson(manifestPath(root, '0000'))).training_data as any[]).find((e) => e.filename === file);
  return { root, proxy, direct, flags, bytesAt, entry };
}

/** The proxy's PUTs (and completions) for `file` since request number `from`. */
const writesOf = (proxy: FaultProxy, file: string, from = 0) =>
  proxy.requests.slice(from).filter((r) => (r.method === 'PUT' || r.method === 'POST') && r.url.includes(file));

describe('push never overwrites an object it did not see', () => {
  it('a local_only image whose key another machine filled since the check: 412, one line naming the URL and what to do, exit 1; the object and the entry stay as they were', async () => {
    const { root, proxy, direct, flags, bytesAt, entry } = await setUp();
    const eight = SEED_LISTED.find((f) => f.endsWith('_8.png'))!;
    expect((await run(['sync', '--root', root, '--remote', ...flags])).code).toBe(0);
    const before = await entry(eight);
    expect(before).toMatchObject({ status: 'local_only', s3_exists: false });
    await putObject(direct, BUCKET, key(eight), 'uploaded by another machine');

    const seen = proxy.requests.length;
    const pushed = await run(['push', '--root', root, ...flags, '--json']);
    expect(pushed.code).toBe(1);
    const errors = pushed.stderr.trim().split('\n');
    expect(errors).toEqual([
      `error: ${SEED_NAME}: ${urlOf(eight)}: ${eight}: ${urlOf(eight)}: not uploaded: an object already exists there: run \`sync --remote\` to compare; not recorded as synced`,
    ]);
    expect(writesOf(proxy, eight, seen)).toEqual([
      expect.objectContaining({ condition: 'If-None-Match: *', status: 412 }),
    ]);
    expect(await bytesAt(eight)).toBe('uploaded by another machine');
    expect(await entry(eight)).toEqual(before);
    // The other uploads went ahead, each with the condition.
    const summary = TransferSummarySchema.parse(JSON.parse(pushed.stdout));
    expect(summary.transfers.filter((t) => !t.error).length).toBeGreaterThan(0);
    for (const transfer of summary.transfers.filter((t) => !t.error)) {
      expect(writesOf(proxy, transfer.filename, seen)).toEqual([
        expect.objectContaining({ condition: 'If-None-Match: *', status: 200 }),
      ]);
    }
  });

  it('push --repair over an object that changed since the check saw it: If-Match fails with 412, nothing is overwritten or recorded', async () => {
    const { root, proxy, direct, flags, bytesAt, entry } = await setUp();
    const six = SEED_LISTED.find((f) => f.endsWith('_6.png'))!;
    for (const file of SEED_LISTED)
      await putObject(
        direct,
        BUCKET,
        key(file),
        file === six ? 'old bytes' : readFileSync(join(trainingDir(root, SEED_NAME), file)),
      );
    expect((await run(['sync', '--root', root, '--remote', ...flags])).code).toBe(0);
    const checked = await entry(six);
    expect(checked.status).toBe('out_of_sync');
    await putObject(direct, BUCKET, key(six), 'replaced by another machine since');

    const seen = proxy.requests.length;
    const pushed = await run(['push', '--root', root, '--repair', ...flags]);
    expect(pushed.code).toBe(1);
    expect(pushed.stderr).toContain(
      `${urlOf(six)}: not uploaded: the object there is no longer the one last checked (ETag ${checked.s3_etag}): run \`sync --remote\` to compare; not recorded as synced`,
    );
    expect(writesOf(proxy, six, seen)).toEqual([
      expect.objectContaining({ condition: `If-Match: "${checked.s3_etag}"`, status: 412 }),
    ]);
    expect(await bytesAt(six)).toBe('replaced by another machine since');
    expect(await entry(six)).toEqual(checked);
  });

  it('push --repair of an out_of_sync image whose object no check has seen (no recorded ETag): not uploaded, exit 1, nothing sent', async () => {
    const root = await tempRoot();
    const server = await startS3Server([BUCKET]);
    const proxy = await startFaultProxy(server.endpoint);
    const hashes = await addImages(root, '0001_a', { 'a.png': 100 });
    const url = `https://${BUCKET}.s3.us-west-1.amazonaws.com/system_actors/training_data/0001_a/a.png`;
    // An entry another tool wrote: S3's MD5 recorded, its ETag not.
    writeFileSync(
      manifestPath(root, '0001'),
      JSON.stringify({
        character_id: '0001',
        training_data: [{ filename: 'a.png', s3_url: url, md5_hash: hashes['a.png'], s3_md5: 'f'.repeat(32) }],
      }),
    );
    const pushed = await run(['push', '--root', root, '--repair', '--endpoint', proxy.endpoint, '--force-path-style']);
    expect(pushed.code).toBe(1);
    expect(pushed.stderr).toContain(
      `${url}: not uploaded: no check recorded the ETag of the object there, so it would be replaced unseen: run \`sync --remote\` to compare`,
    );
    expect(proxy.count('put')).toBe(0);
  });
});

describe('a store without conditional writes (501 NotImplemented)', () => {
  it('fails each upload with one line naming --allow-overwrite and warns once; with --allow-overwrite, uploads unconditionally and still warns once', async () => {
    const { root, proxy, flags, entry } = await setUp();
    proxy.refuseConditionalWrites();
    const pushed = await run(['push', '--root', root, ...flags, '--json']);
    expect(pushed.code).toBe(1);
    const lines = pushed.stderr.trim().split('\n');
    const warnings = lines.filter((line) => line.startsWith('warning: '));
    expect(warnings).toEqual([
      `warning: ${proxy.endpoint}: does not support conditional writes (501 NotImplemented to If-None-Match / If-Match); nothing was uploaded over an object; pass --allow-overwrite to upload without them`,
    ]);
    const errors = lines.filter((line) => line.startsWith('error: '));
    expect(errors).toHaveLength(5); // the seed's 5 images without a URL
    for (const line of errors)
      expect(line).toMatch(
        /: not uploaded: the store does not support conditional writes \(501 NotImplemented\), so an object there could be replaced unseen; pass --allow-overwrite to upload anyway; not recorded as synced$/,
      );
    expect(proxy.requests.filter((r) => r.method === 'PUT').every((r) => r.status === 501)).toBe(true);
    expect((await entry(`${SEED_NAME}_0.png`)).status).toBe('local_only');

    const allowed = await run(['push', '--root', root, ...flags, '--allow-overwrite', '--json']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stderr.trim().split('\n')).toEqual([
      `warning: ${proxy.endpoint}: does not support conditional writes (501 NotImplemented to If-None-Match / If-Match); uploaded without them (--allow-overwrite)`,
    ]);
    expect(TransferSummarySchema.parse(JSON.parse(allowed.stdout)).transfers.filter((t) => !t.error)).toHaveLength(5);
    expect((await entry(`${SEED_NAME}_0.png`)).status).toBe('synced');
  });
});

describe('a 501 that is not about the condition (the checksum header the upload also carries)', () => {
  it('a 501 naming the checksum header: each upload fails naming it, the condition is not blamed', async () => {
    const { root, proxy, flags, entry } = await setUp();
    proxy.refuseChecksums(true);
    const pushed = await run(['push', '--root', root, ...flags, '--allow-overwrite', '--json']);
    expect(pushed.code).toBe(1);
    const lines = pushed.stderr.trim().split('\n');
    expect(
      lines.filter((line) => line.startsWith('warning: ')),
      'no warning about conditional writes',
    ).toEqual([]);
    expect(lines).toHaveLength(5);
    for (const line of lines)
      expect(line).toMatch(
        /: not uploaded: the store does not support the x-amz-checksum-crc64nvme header \(501 NotImplemented\); not recorded as synced$/,
      );
    expect(
      proxy.requests.filter((r) => r.method === 'PUT').every((r) => r.condition !== undefined && r.status === 501),
      'none sent again without its condition',
    ).toBe(true);
    expect((await entry(`${SEED_NAME}_0.png`)).status).toBe('local_only');
  });

  it('a bare 501 that the unconditional write (--allow-overwrite) gets too: reported as the checksum header, not the condition', async () => {
    const { root, proxy, flags, entry } = await setUp();
    proxy.refuseChecksums(false);
    const pushed = await run(['push', '--root', root, ...flags, '--allow-overwrite', '--json']);
    expect(pushed.code).toBe(1);
    const lines = pushed.stderr.trim().split('\n');
    expect(
      lines.filter((line) => line.startsWith('warning: ')),
      'no warning about conditional writes',
    ).toEqual([]);
    expect(lines).toHaveLength(5);
    for (const line of lines)
      expect(line).toMatch(
        /: not uploaded: the store does not support the x-amz-checksum-crc64nvme header of the upload \(501 NotImplemented\); not recorded as synced$/,
      );
    const puts = proxy.requests.filter((r) => r.method === 'PUT');
    expect(
      puts.filter((r) => r.condition === undefined).length,
      'each tried once without its condition',
    ).toBeGreaterThan(0);
    expect(puts.every((r) => r.status === 501)).toBe(true);
    expect((await entry(`${SEED_NAME}_0.png`)).status).toBe('local_only');
  });
});

describe('one budget of attempts per uploaded object', () => {
  it('the unconditional write after a 501 is sent within the same 5 requests as the refused one', async () => {
    const { root, proxy, flags, entry } = await setUp();
    proxy.refuseConditionalWrites();
    const file = `${SEED_NAME}_0.png`;
    let puts = 0;
    const isPut = (r: { method: string; url: string }) =>
      r.method === 'PUT' && r.url.split('?')[0]!.endsWith(`/${file}`);
    // The first PUT (with its condition) is refused 501; every later one fails 500, which the SDK retries.
    proxy.inject('http500', Infinity, (r) => isPut(r) && ++puts > 1);
    const pushed = await run(['push', '--root', root, ...flags, '--allow-overwrite', '--json']);
    expect(pushed.code).toBe(1);
    const sent = proxy.requests.filter(isPut);
    expect(sent.map((r) => r.status ?? r.fault)).toEqual([501, 'http500', 'http500', 'http500', 'http500']);
    expect((await entry(file)).status).toBe('local_only');
  });
});
