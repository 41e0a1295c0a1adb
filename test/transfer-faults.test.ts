/** The CLI under S3 faults: retried faults succeed; a persistent one is reported per image, exits 1 and is never recorded as synced. */
import { describe, expect, it } from 'vitest';
import { TransferSummarySchema } from '../src/engine/summary.js';
import { run } from './helpers/s3-cli.js';
import { startFaultProxy, startS3Server } from './helpers/s3.js';
import { manifestPath, readJson, SEED_NAME, seedActor0000, tempRoot } from './helpers/root.js';

const BUCKET = 'story-boards-assets';

describe('push through a fault-injecting proxy', () => {
  it('retries passing faults, reports a persistent one per image with exit 1, and leaves that image unsynced', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await startS3Server([BUCKET]);
    const proxy = await startFaultProxy(server.endpoint);
    const flags = ['--endpoint', proxy.endpoint, '--force-path-style', '--json'];
    const isPut = (r: { method: string; url: string }) => r.method === 'PUT';
    const broken = (r: { method: string; url: string }) => isPut(r) && r.url.includes(`${SEED_NAME}_2.png`);
    // Two transient faults on the first PUTs, and _2.png's upload fails for good.
    proxy.inject('slowDown', 1, (r) => isPut(r) && !broken(r));
    proxy.inject('http500', 1, (r) => isPut(r) && !broken(r));
    proxy.inject('http500', Infinity, broken);

    const pushed = await run(['push', '--root', root, ...flags]);
    expect(pushed.code).toBe(1);
    expect(pushed.stderr).toMatch(
      new RegExp(`error: ${SEED_NAME}: \\S+${SEED_NAME}_2\\.png: ${SEED_NAME}_2\\.png: .*; not recorded as synced`),
    );
    expect(pushed.stderr).not.toMatch(/\n\s+at /);
    const summary = TransferSummarySchema.parse(JSON.parse(pushed.stdout));
    expect(summary.transfers.filter((t) => t.error).map((t) => t.filename)).toEqual([`${SEED_NAME}_2.png`]);
    expect(summary.transfers.filter((t) => !t.error)).toHaveLength(4); // _0, _1, _3, _4.jpg: the 12 listed are assumed synced

    const entries = (await readJson(manifestPath(root, '0000'))).training_data as any[];
    const status = (file: string) => entries.find((e) => e.filename === `${SEED_NAME}_${file}`)?.status;
    expect(status('2.png')).toBe('local_only');
    expect(['0.png', '1.png', '3.png', '4.jpg'].map(status)).toEqual(['synced', 'synced', 'synced', 'synced']);
    expect(proxy.requests.filter((r) => r.fault === 'slowDown' || (r.fault === 'http500' && !broken(r)))).toHaveLength(
      2,
    );
    await proxy.close();
  });
});
