/** `sync --remote`, `status --remote`, `check --remote` against a real S3-compatible server on loopback. */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SyncSummarySchema, StatusSummarySchema } from '../src/engine/summary.js';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { putObject, startFaultProxy, startS3Server, testS3 } from './helpers/s3.js';
import { run } from './helpers/s3-cli.js';
import { runCli } from './helpers/cli.js';
import {
  addImages,
  manifestPath,
  readJson,
  SEED_LISTED,
  SEED_NAME,
  SEED_URLS,
  seedActor0000,
  snapshot,
  tempRoot,
  trainingDir,
  writeManifest,
} from './helpers/root.js';

const BUCKET = 'story-boards-assets';
const OTHER = 'custom-actors';
const key = (file: string) => `system_actors/training_data/${SEED_NAME}/${file}`;

/** `sync --remote --json` against `endpoint`: it must succeed without a word on stderr; its summary. */
async function syncRemote(root: string, endpoint: string) {
  const r = await run(['sync', '--root', root, '--remote', '--endpoint', endpoint, '--force-path-style', '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return SyncSummarySchema.parse(JSON.parse(r.stdout));
}

/** The seed's actor with its listed images in S3 as they are, but `except`; its root, server and client. */
async function seedInS3(except?: string) {
  const root = await tempRoot();
  await seedActor0000(root);
  const server = await startS3Server([BUCKET]);
  const s3 = testS3(server.endpoint, { forcePathStyle: true });
  const dir = trainingDir(root, SEED_NAME);
  for (const file of SEED_LISTED)
    if (file !== except) await putObject(s3, BUCKET, key(file), readFileSync(join(dir, file)));
  return { root, server, s3 };
}

describe('--remote', () => {
  it('finds synced, out_of_sync, local_only (object absent), s3_only and missing, in two buckets and two key layouts', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await startS3Server([BUCKET, OTHER]);
    const s3 = testS3(server.endpoint, { forcePathStyle: true });
    const dir = trainingDir(root, SEED_NAME);
    // 10 of the 12 listed images are in S3 as they are; _6 has other bytes; _8 is absent.
    for (const file of SEED_LISTED) {
      if (file.endsWith('_8.png')) continue;
      const bytes = file.endsWith('_6.png') ? Buffer.from('other bytes') : readFileSync(join(dir, file));
      await putObject(s3, BUCKET, key(file), bytes);
    }
    // A second actor in another bucket and the custom-actor layout: one s3_only present, one missing.
    const user = '2b3c4d5e-0000-4000-8000-000000000001';
    const customUrl = (f: string) =>
      `https://${OTHER}.s3.us-west-1.amazonaws.com/${user}/custom_actor/0100_custom/training_data/${f}`;
    await addImages(root, '0100_custom', { 'local.png': 100 });
    await writeManifest(root, '0100', {
      character_id: '0100',
      training_data: [
        { filename: 'gone.png', s3_url: customUrl('gone.png'), status: 's3_only' },
        { filename: 'there.png', s3_url: customUrl('there.png'), status: 's3_only' },
      ],
    });
    await putObject(s3, OTHER, `${user}/custom_actor/0100_custom/training_data/there.png`, Buffer.from('remote only'));

    const summary = await syncRemote(root, server.endpoint);
    // One HEAD: _6's listed ETag differs from its local MD5, and only a HEAD tells it is the MD5 (no KMS).
    expect(summary.s3_requests).toMatchObject({ head: 1, put: 0, get: 0 });
    expect(summary.s3_requests!.list).toBeLessThanOrEqual(3);

    const seed = (await readJson(manifestPath(root, '0000'))).training_data as any[];
    const by = (n: number, ext = 'png') => seed.find((e) => e.filename === `${SEED_NAME}_${n}.${ext}`);
    expect(by(4).status).toBe('synced');
    expect(by(4).s3_md5).toBe(by(4).md5_hash);
    expect(by(4).s3_etag).toBe(by(4).md5_hash);
    expect(by(4).s3_checked_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(by(6).status).toBe('out_of_sync');
    expect(by(6).s3_md5).not.toBe(by(6).md5_hash);
    expect(by(8)).toMatchObject({
      status: 'local_only',
      s3_exists: false,
      s3_url: SEED_URLS.find((u) => u.endsWith('_8.png')),
    });
    expect(seed.filter((e) => e.status === 'synced')).toHaveLength(10);
    const custom = (await readJson(manifestPath(root, '0100'))).training_data as any[];
    expect(custom.map((e: any) => [e.filename, e.status])).toEqual([
      ['gone.png', 'missing'],
      ['local.png', 'local_only'],
      ['there.png', 's3_only'],
    ]);
    expect(custom[0].s3_exists).toBe(false);

    // Without --remote the findings are kept: nothing to rewrite.
    const again = await run(['sync', '--root', root, '--json']);
    expect(SyncSummarySchema.parse(JSON.parse(again.stdout)).manifests.unchanged).toBe(2);
    const status = await run(['status', '--root', root, '--json']);
    const totals = StatusSummarySchema.parse(JSON.parse(status.stdout)).totals;
    expect(totals).toMatchObject({ synced: 10, out_of_sync: 1, local_only: 7, s3_only: 1, missing: 1 });
    const check = await run([
      'check',
      '--root',
      root,
      '--remote',
      '--endpoint',
      server.endpoint,
      '--force-path-style',
      '--require-synced',
    ]);
    expect(check.code).toBe(1);
  });

  it('status --remote shows what only S3 can tell (an object absent), and writes nothing', async () => {
    const eight = SEED_LISTED.find((f) => f.endsWith('_8.png'))!;
    const { root, server } = await seedInS3(eight);
    const before = await snapshot(root);
    const local = await run(['status', '--root', root, '--json']);
    expect(StatusSummarySchema.parse(JSON.parse(local.stdout)).totals).toMatchObject({
      synced: 12,
      local_only: 5,
      missing: 0,
    });

    const remote = await run([
      'status',
      '--root',
      root,
      '--remote',
      '--endpoint',
      server.endpoint,
      '--force-path-style',
      '--json',
    ]);
    expect(remote.stderr).toBe('');
    expect(remote.code).toBe(0);
    const summary = StatusSummarySchema.parse(JSON.parse(remote.stdout));
    // _8's URL points to no object: local_only, which only a remote check can find.
    expect(summary.totals).toMatchObject({ synced: 11, local_only: 6, out_of_sync: 0, s3_only: 0, missing: 0 });
    expect(summary.per_actor).toEqual([expect.objectContaining({ name: SEED_NAME, synced: 11, local_only: 6 })]);
    expect(await snapshot(root)).toEqual(before);
  });

  it('an object the manifest found absent, now there with a multipart ETag it cannot verify: existing, taken to hold the local file (never out_of_sync for its ETag), not pushed over', async () => {
    const eight = SEED_LISTED.find((f) => f.endsWith('_8.png'))!;
    const { root, server, s3 } = await seedInS3(eight);
    await syncRemote(root, server.endpoint);
    const entryOf8 = async () =>
      ((await readJson(manifestPath(root, '0000'))).training_data as any[]).find((e) => e.filename === eight);
    expect(await entryOf8()).toMatchObject({ status: 'local_only', s3_exists: false });

    // Uploaded by another tool, in parts: an ETag of 2 parts and no MD5 stored with it.
    await putObject(s3, BUCKET, key(eight), Buffer.from('uploaded elsewhere'));
    const proxy = await startFaultProxy(server.endpoint);
    const multipart = `${'ab'.repeat(16)}-2`;
    proxy.rewriteEtags((k) => (k === key(eight) ? multipart : undefined));
    const r = await run([
      'sync',
      '--root',
      root,
      '--remote',
      '--endpoint',
      proxy.endpoint,
      '--force-path-style',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `${key(eight)}: cannot be verified (a multipart ETag without a stored MD5); it exists now; treated as a URL never verified`,
    );
    const entry = await entryOf8();
    expect(entry).toMatchObject({ status: 'synced', s3_etag: multipart });
    expect(entry.s3_md5).toBe(entry.md5_hash);
    expect(entry.s3_exists).toBeUndefined();

    // push uploads local_only images only: this one is left as S3 holds it (`sync --remote` cannot tell it
    // apart; comparing its bytes would take a download).
    const push = await run(['push', '--root', root, '--endpoint', server.endpoint, '--force-path-style', '--json']);
    expect(push.code).toBe(0);
    const held = await s3.run(() => s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key(eight) })));
    expect(await held.Body!.transformToString()).toBe('uploaded elsewhere');
  });

  it('a URL new to the manifest whose object has a multipart ETag it cannot verify: as without --remote, never out_of_sync for its ETag', async () => {
    const { root, server } = await seedInS3();
    const first = SEED_LISTED[0]!;
    const proxy = await startFaultProxy(server.endpoint);
    proxy.rewriteEtags((k) => (k === key(first) ? `${'cd'.repeat(16)}-2` : undefined));
    const r = await run([
      'sync',
      '--root',
      root,
      '--remote',
      '--endpoint',
      proxy.endpoint,
      '--force-path-style',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `${key(first)}: cannot be verified (a multipart ETag without a stored MD5); treated as a URL never verified`,
    );
    const entry = ((await readJson(manifestPath(root, '0000'))).training_data as any[]).find(
      (e) => e.filename === first,
    );
    expect(entry.status).toBe('synced');
    expect(entry.s3_md5).toBe(entry.md5_hash);
  });

  it('many actors: one listing of their shared prefix (started while the URLs are collected), wherever the first URL points', async () => {
    const root = await tempRoot();
    const server = await startS3Server([BUCKET, OTHER]);
    const s3 = testS3(server.endpoint, { forcePathStyle: true });
    const names = Array.from({ length: 12 }, (_, i) => `${String(i + 1).padStart(4, '0')}_actor`);
    const systemUrl = (name: string, f: string) =>
      `https://${BUCKET}.s3.us-west-1.amazonaws.com/system_actors/training_data/${name}/${f}`;
    for (const name of names) {
      const hashes = await addImages(root, name, { [`${name}_0.png`]: 200, [`${name}_1.png`]: 300 });
      const id = name.slice(0, 4);
      await writeManifest(root, id, {
        character_id: id,
        training_data: Object.keys(hashes).map((filename) => ({ filename, s3_url: systemUrl(name, filename) })),
      });
      // _1 is in S3 as it is; _0 is absent.
      await putObject(
        s3,
        BUCKET,
        `system_actors/training_data/${name}/${name}_1.png`,
        readFileSync(join(trainingDir(root, name), `${name}_1.png`)),
      );
    }
    // One actor in another bucket and layout: whichever actor's URLs come first, every fact is right.
    const user = '2b3c4d5e-0000-4000-8000-000000000001';
    await addImages(root, '0000_custom', { 'there.png': 100 });
    await putObject(
      s3,
      OTHER,
      `${user}/custom_actor/0000_custom/training_data/there.png`,
      readFileSync(join(trainingDir(root, '0000_custom'), 'there.png')),
    );
    await writeManifest(root, '0000', {
      character_id: '0000',
      training_data: [
        {
          filename: 'there.png',
          s3_url: `https://${OTHER}.s3.us-west-1.amazonaws.com/${user}/custom_actor/0000_custom/training_data/there.png`,
        },
      ],
    });

    const summary = await syncRemote(root, server.endpoint);
    // One page for each prefix, and at most the one page of a guess the plan does not hold (the custom actor's).
    expect(summary.s3_requests).toMatchObject({ head: 0, put: 0, get: 0 });
    expect(summary.s3_requests!.list).toBeGreaterThanOrEqual(2);
    expect(summary.s3_requests!.list).toBeLessThanOrEqual(3);
    expect(summary.totals).toMatchObject({ synced: 13, local_only: 12, s3_only: 0, out_of_sync: 0, missing: 0 });
    for (const name of names) {
      const entries = (await readJson(manifestPath(root, name.slice(0, 4)))).training_data as any[];
      expect(entries.map((e) => [e.filename, e.status])).toEqual([
        [`${name}_0.png`, 'local_only'],
        [`${name}_1.png`, 'synced'],
      ]);
      expect(entries[0].s3_exists).toBe(false);
      expect(entries[1].s3_md5).toBe(entries[1].md5_hash);
    }
    expect(((await readJson(manifestPath(root, '0000'))).training_data as any[])[0]).toMatchObject({
      filename: 'there.png',
      status: 'synced',
    });
  });

  it('many actors, S3 unreachable: one line on stderr, exit 2, no manifest touched', async () => {
    const root = await tempRoot();
    const paths: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      const name = `${String(i).padStart(4, '0')}_actor`;
      await addImages(root, name, { [`${name}_0.png`]: 100 });
      const url = `https://${BUCKET}.s3.us-west-1.amazonaws.com/system_actors/training_data/${name}/${name}_0.png`;
      paths.push(
        await writeManifest(root, name.slice(0, 4), {
          character_id: name.slice(0, 4),
          training_data: [{ filename: `${name}_0.png`, s3_url: url }],
        }),
      );
    }
    const before = paths.map((path) => readFileSync(path));
    const r = await run(['sync', '--root', root, '--remote', '--endpoint', 'http://127.0.0.1:1', '--force-path-style']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^actor-sync: cannot reach S3 at http:\/\/127\.0\.0\.1:1/);
    expect(paths.map((path) => readFileSync(path))).toEqual(before);
  });

  it('S3 unreachable: one line on stderr, exit 2, no manifest touched', async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const before = readFileSync(seed.manifest);
    const r = await run(['sync', '--root', root, '--remote', '--endpoint', 'http://127.0.0.1:1', '--force-path-style']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^actor-sync: cannot reach S3 at http:\/\/127\.0\.0\.1:1/);
    expect(r.stdout).toBe('');
    expect(readFileSync(seed.manifest)).toEqual(before);
  });

  it('push and pull with S3 unreachable or without credentials: one line on stderr, exit 2, every file as it was', async () => {
    const noCredentials = {
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_PROFILE: '',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
      AWS_CONFIG_FILE: '/nonexistent/config',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_REGION: 'us-west-1',
    };
    for (const command of ['push', 'pull']) {
      for (const [how, args, env, message] of [
        [
          'unreachable',
          ['--endpoint', 'http://127.0.0.1:1'],
          undefined,
          /^actor-sync: cannot reach S3 at http:\/\/127\.0\.0\.1:1/,
        ],
        ['no credentials', [], noCredentials, /^actor-sync: no AWS credentials found/],
      ] as const) {
        const root = await tempRoot();
        await seedActor0000(root);
        rmSync(join(trainingDir(root, SEED_NAME), SEED_LISTED[0]!)); // an s3_only image for pull to fetch
        const before = await snapshot(root);
        const argv = [command, '--root', root, '--force-path-style', ...args];
        const r = env ? await runCli(argv, env) : await run(argv);
        expect(r.code, `${command}, ${how}: ${r.stderr}`).toBe(2);
        expect(r.stderr.trim().split('\n'), `${command}, ${how}`).toHaveLength(1);
        expect(r.stderr, `${command}, ${how}`).toMatch(message);
        expect(r.stdout).toBe('');
        expect(await snapshot(root), `${command}, ${how}`).toEqual(before);
      }
    }
  });

  it('push and pull on a root never synced (no manifests folder) take their lock like sync does', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const manifests = join(root, 'data', 'actor_manifests');
    rmSync(manifests, { recursive: true });
    // push has images to upload, so it gets as far as S3.
    const pushed = await run(['push', '--root', root, '--endpoint', 'http://127.0.0.1:1', '--force-path-style']);
    expect(pushed.stderr).toMatch(/^actor-sync: cannot reach S3 at http:\/\/127\.0\.0\.1:1/);
    expect(pushed.code).toBe(2);
    rmSync(manifests, { recursive: true, force: true });
    // pull has nothing to download (every listed image is here): it writes the manifest and is done.
    const pulled = await run(['pull', '--root', root, '--endpoint', 'http://127.0.0.1:1', '--force-path-style']);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(existsSync(manifestPath(root, '0000'))).toBe(true);
  });
});
