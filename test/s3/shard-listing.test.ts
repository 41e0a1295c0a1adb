/**
 * SPEC §8, `--shard K/N --remote`: a shard's actors sit among the other shards' in S3's key order, so its
 * ranges are cut where all shards' keys fill a page (the other actors' folders counted at its own actors'
 * average), as one unsharded run cuts them: every shard reads the pages one run reads, no more. The CLI
 * against s3rver, LIST requests seen at a proxy.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SyncSummarySchema } from '../../src/engine/summary.js';
import { shardOf } from '../../src/engine/shard.js';
import { addImages, tempRoot, writeResponseJson } from '../helpers/root.js';
import { run } from '../helpers/s3-cli.js';
import { kindOf, putObject, startFaultProxy, startS3Server, testS3, type FaultProxy } from '../helpers/s3.js';

const BUCKET = 'story-boards-assets';
const PREFIX = 'system_actors/training_data';
const ACTORS = 64;
const IMAGES = 20; // 1280 keys: two ranges
const nameOf = (a: number) => `${String(a).padStart(4, '0')}_actor`;

let root: string;
let proxy: FaultProxy;
beforeAll(async () => {
  root = await tempRoot();
  const { endpoint } = await startS3Server([BUCKET]);
  proxy = await startFaultProxy(endpoint);
  const s3 = testS3(endpoint, { concurrency: 32 });
  const puts: Array<Promise<void>> = [];
  for (let a = 0; a < ACTORS; a += 1) {
    const name = nameOf(a);
    const files = Object.fromEntries(
      Array.from({ length: IMAGES }, (_, i) => [`${name}_${i}.jpg`, Buffer.from(`image ${i} of ${name}`)]),
    );
    await addImages(root, name, files);
    const urls = Object.keys(files).map(
      (file) => `https://${BUCKET}.s3.us-west-1.amazonaws.com/${PREFIX}/${name}/${file}`,
    );
    await writeResponseJson(root, name, urls);
    for (const [file, bytes] of Object.entries(files))
      puts.push(putObject(s3, BUCKET, `${PREFIX}/${name}/${file}`, bytes));
  }
  await Promise.all(puts);
});

/** `sync --remote` (with `args`) through the proxy: its summary, and the start-after of each LIST it sent. */
async function syncRemote(...args: string[]) {
  const from = proxy.requests.length;
  const endpoint = ['--endpoint', proxy.endpoint, '--force-path-style'];
  const r = await run(['sync', '--root', root, '--remote', '--json', ...endpoint, ...args]);
  expect(r.stderr).toBe('');
  const summary = SyncSummarySchema.parse(JSON.parse(r.stdout));
  const starts = proxy.requests
    .slice(from)
    .filter((request) => kindOf(request) === 'list')
    .map((request) => new URL(request.url, 'http://proxy').searchParams.get('start-after') ?? '')
    .sort();
  return { code: r.code, summary, starts };
}

describe('--shard K/4 --remote', () => {
  it('each shard lists the ranges one unsharded run lists (those holding its actors), with or without its cache', async () => {
    // The first run of each has no sync cache (its URLs from the response.json files, then the manifests); the
    // second has one. A listing started from the first URL has no start-after; one from the cache, its range's.
    const whole = [await syncRemote(), await syncRemote()];
    expect(whole.map((night) => night.code)).toEqual([0, 0]);
    expect(whole[0]!.starts.length).toBeGreaterThanOrEqual(2);
    for (let k = 1; k <= 4; k += 1) {
      const own = Array.from({ length: ACTORS }, (_, a) => nameOf(a)).filter(
        (name) => shardOf(name.slice(0, 4), 4) === k,
      );
      for (const night of [0, 1]) {
        const shard = await syncRemote('--shard', `${k}/4`);
        const what = `shard ${k}/4, ${night === 0 ? 'no cache' : 'its cache'}`;
        expect(shard.code, what).toBe(0);
        expect(shard.summary.totals.synced, what).toBe(own.length * IMAGES);
        expect(shard.starts, what).toEqual(whole[night]!.starts);
      }
    }
  });
});
