/** push → pull → push --repair converge, against a real S3-compatible server; restore-legacy rebuilds response.json. */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TransferSummarySchema } from '../src/engine/summary.js';
import { pollUntil, startCli } from './helpers/cli.js';
import { runPush } from '../src/engine/push-pull.js';
import { putObject, startFaultProxy, startS3Server, TEST_CREDENTIALS, testS3 } from './helpers/s3.js';
import {
  addImages,
  leaveStaleTemp,
  manifestPath,
  md5,
  readJson,
  SEED_BASE,
  SEED_NAME,
  SEED_URLS,
  seedActor0000,
  snapshot,
  tempRoot,
  trainingDir,
  writeResponseJson,
} from './helpers/root.js';
import { run, S3_ENV } from './helpers/s3-cli.js';

const BUCKET = 'story-boards-assets';

describe('push, pull, push --repair', () => {
  it('converge: check --remote --require-synced exits 0 and every object equals its local file', async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const server = await startS3Server([BUCKET]);
    const s3flags = ['--endpoint', server.endpoint, '--force-path-style'];
    const dir = trainingDir(root, SEED_NAME);

    // Offline, response.json's 12 URLs are assumed synced; S3 is empty, so --remote finds them absent.
    expect((await run(['sync', '--root', root])).code).toBe(0);
    expect((await run(['check', '--root', root, '--remote', '--require-synced', ...s3flags])).code).toBe(1);
    expect((await run(['sync', '--root', root, '--remote', ...s3flags])).code).toBe(0);

    const dry = await run(['push', '--root', root, '--dry-run', '--json', ...s3flags]);
    expect(dry.code).toBe(0);
    expect(TransferSummarySchema.parse(JSON.parse(dry.stdout)).transfers).toHaveLength(17);
    await expect(readJson(seed.manifest)).resolves.toMatchObject({ statistics: { training_synced_count: 0 } });

    const pushed = await run(['push', '--root', root, '--json', ...s3flags]);
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);
    const summary = TransferSummarySchema.parse(JSON.parse(pushed.stdout));
    expect(summary.transfers.filter((t) => !t.error)).toHaveLength(17);
    expect(summary.totals).toMatchObject({ images: 17, synced: 17 });
    // Images without a URL go next to the actor's other S3 images.
    const url0 = summary.transfers.find((t) => t.filename === `${SEED_NAME}_0.png`)!.url;
    expect(url0).toBe(SEED_URLS[0]!.replace('_4.png', '_0.png'));
    expect((await run(['check', '--root', root, '--remote', '--require-synced', ...s3flags])).code).toBe(0);

    // pull: a local file lost is downloaded, verified and recorded as synced.
    const lost = join(dir, `${SEED_NAME}_9.png`);
    const original = readFileSync(lost);
    rmSync(lost);
    // What a pull killed mid-commit leaves, and a user's files that only look alike: never touched.
    const stale = await leaveStaleTemp(dir, `${SEED_NAME}_9.png`);
    const mine = {
      'x.png.1': 'an older x.png, kept by hand',
      [`${SEED_NAME}_9.png.3141592653`]: 'a copy',
      'notes.txt.12': 'notes',
    };
    for (const [name, text] of Object.entries(mine)) writeFileSync(join(dir, name), text);
    const pulled = await run(['pull', '--root', root, '--json', ...s3flags]);
    expect(pulled.code).toBe(0);
    expect(TransferSummarySchema.parse(JSON.parse(pulled.stdout)).transfers.map((t) => t.filename)).toEqual([
      `${SEED_NAME}_9.png`,
    ]);
    expect(readFileSync(lost)).toEqual(original);
    expect(existsSync(stale)).toBe(false);
    for (const [name, text] of Object.entries(mine)) expect(readFileSync(join(dir, name), 'utf8'), name).toBe(text);

    // push --repair: the local file wins.
    writeFileSync(join(dir, `${SEED_NAME}_6.png`), 'retouched locally');
    expect((await run(['push', '--root', root, ...s3flags])).code).toBe(0); // out_of_sync is left alone without --repair
    expect((await run(['check', '--root', root, '--remote', '--require-synced', ...s3flags])).code).toBe(1);
    expect((await run(['push', '--root', root, '--repair', ...s3flags])).code).toBe(0);
    expect((await run(['check', '--root', root, '--remote', '--require-synced', ...s3flags])).code).toBe(0);

    const client = testS3(server.endpoint, { forcePathStyle: true }).client;
    for (const entry of (await readJson(manifestPath(root, '0000'))).training_data as any[]) {
      // Virtual-hosted URLs: the path is the key.
      const key = decodeURIComponent(new URL(entry.s3_url).pathname.slice(1));
      const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      const bytes = Buffer.from(await object.Body!.transformToByteArray());
      expect(md5(bytes)).toBe(md5(readFileSync(join(dir, entry.filename))));
    }
    expect(existsSync(seed.response)).toBe(false);
  });
});

describe('push and pull delete nothing (SPEC §3, invariant 3)', () => {
  it('every S3 object and every local file there before is there after, and those neither transferred are untouched', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await startS3Server([BUCKET]);
    const s3flags = ['--endpoint', server.endpoint, '--force-path-style'];
    const s3 = testS3(server.endpoint);
    const dir = trainingDir(root, SEED_NAME);
    const prefix = `system_actors/training_data/${SEED_NAME}/`;
    /** Every object in the bucket: key → ETag. */
    const objects = async () => {
      const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: 1000 }));
      expect(listed.IsTruncated).toBeFalsy();
      return new Map((listed.Contents ?? []).map((o) => [o.Key!, o.ETag!]));
    };
    expect((await run(['sync', '--root', root])).code).toBe(0);
    expect((await run(['sync', '--root', root, '--remote', ...s3flags])).code).toBe(0);
    expect((await run(['push', '--root', root, ...s3flags])).code).toBe(0);

    // Objects no manifest names (beside the actor's images, and elsewhere), an image only in S3 (its local
    // file gone), one only local (its object gone), and local files that are not images.
    await putObject(s3, BUCKET, `${prefix}orphan.png`, 'no manifest names me');
    await putObject(s3, BUCKET, 'elsewhere/other.png', 'nor me');
    rmSync(join(dir, `${SEED_NAME}_9.png`));
    await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${prefix}${SEED_NAME}_6.png` }));
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    writeFileSync(join(dir, `${SEED_NAME}_10.png.1`), 'an older copy');
    expect((await run(['sync', '--root', root, '--remote', ...s3flags])).code).toBe(0);

    const remoteBefore = await objects();
    const localBefore = await snapshot(join(root, 'data', 'actors'));
    expect(remoteBefore.has(`${prefix}orphan.png`)).toBe(true);
    expect(remoteBefore.has(`${prefix}${SEED_NAME}_6.png`)).toBe(false);
    expect(localBefore.has(`${SEED_NAME}/training_data/${SEED_NAME}_9.png`)).toBe(false);

    for (const args of [['push'], ['pull'], ['push', '--repair']]) {
      const r = await run([...args, '--root', root, ...s3flags]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    const remoteAfter = await objects();
    const localAfter = await snapshot(join(root, 'data', 'actors'));
    // What was transferred: the one upload and the one download, nothing else.
    expect([...remoteAfter.keys()].filter((key) => !remoteBefore.has(key))).toEqual([`${prefix}${SEED_NAME}_6.png`]);
    expect([...localAfter.keys()].filter((path) => !path.endsWith('/') && !localBefore.has(path))).toEqual([
      `${SEED_NAME}/training_data/${SEED_NAME}_9.png`,
    ]);
    for (const [key, etag] of remoteBefore) expect(remoteAfter.get(key), key).toBe(etag);
    for (const [path, state] of localBefore) if (!path.endsWith('/')) expect(localAfter.get(path), path).toBe(state);
  });
});

describe('push --upload-url-template', () => {
  it('a template that is not an S3 URL with {filename} as the last segment of its key is a usage error (exit 2) naming the flag and the value; nothing is planned', async () => {
    const root = await tempRoot();
    await addImages(root, '0001_new', { '0001_new_0.png': 10 });
    for (const [template, reason] of [
      ['not a url', /it has no \{filename\}/],
      ['https://story-boards-assets.s3.us-west-1.amazonaws.com/training_data/{actor_name}/', /it has no \{filename\}/],
      ['ftp://host/{filename}', /URL "ftp:\/\/host\/0000_sample_0\.jpg" has an unsupported scheme "ftp:"/],
      ['not a url/{filename}', /URL "not a url\/0000_sample_0\.jpg" is not a URL/],
      [
        'https://b.s3.amazonaws.com/{filename}/x.jpg',
        /names the object "x\.jpg": \{filename\} must be the last segment of the key/,
      ],
    ] as const) {
      const r = await run(['push', '--root', root, '--dry-run', '--upload-url-template', template]);
      expect(r.code, template).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^[^\n]*\n$/);
      expect(r.stderr).toContain(`--upload-url-template <url>' argument '${template}' is invalid`);
      expect(r.stderr).toMatch(reason);
    }
  });

  it('a valid template places an actor without S3 images, placeholders filled in', async () => {
    const root = await tempRoot();
    await addImages(root, '0001_new', { '0001_new_0.png': 10 });
    const r = await run([
      'push',
      '--root',
      root,
      '--dry-run',
      '--json',
      '--upload-url-template',
      's3://assets/actors/{actor_id}/{actor_name}/{filename}',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(TransferSummarySchema.parse(JSON.parse(r.stdout)).transfers.map((t) => t.url)).toEqual([
      's3://assets/actors/0001/0001_new/0001_new_0.png',
    ]);
  });
});

describe('push and an empty s3_url', () => {
  it('uploads an image whose entry has "s3_url": "" (no URL) to the template URL, and records it synced there', async () => {
    const root = await tempRoot();
    const server = await startS3Server([BUCKET]);
    const hashes = await addImages(root, '0001_empty', { 'a.png': 100 });
    writeFileSync(
      manifestPath(root, '0001'),
      JSON.stringify({
        character_id: '0001',
        training_data: [
          { filename: 'a.png', s3_url: '', md5_hash: hashes['a.png'], s3_md5: hashes['a.png'], status: 'synced' },
        ],
      }),
    );
    const s3flags = ['--endpoint', server.endpoint, '--force-path-style'];
    const r = await run(['push', '--root', root, '--json', ...s3flags]);
    expect(r.code, r.stderr).toBe(0);
    const url = urlOf('0001_empty', 'a.png');
    expect(
      TransferSummarySchema.parse(JSON.parse(r.stdout)).transfers.map((t) => [t.filename, t.url, t.error]),
    ).toEqual([['a.png', url, undefined]]);
    expect((await readJson(manifestPath(root, '0001'))).training_data).toMatchObject([
      { filename: 'a.png', s3_url: url, status: 'synced', s3_md5: hashes['a.png'] },
    ]);
  });
});

describe('pull and URLs that name no image', () => {
  it('downloads only image names; an entry whose URL names another file (response.json, notes.txt, .hidden.png) is reported, not written', async () => {
    const root = await tempRoot();
    const server = await startS3Server([BUCKET]);
    const s3 = testS3(server.endpoint, { forcePathStyle: true });
    const name = '0001_pull';
    const key = (file: string) => `system_actors/training_data/${name}/${file}`;
    const stray = JSON.stringify({ output: { output: { s3_image_urls: ['s3://another-bucket/x/0001_pull/z.png'] } } });
    for (const [file, body] of [
      ['a.png', 'an image'],
      ['response.json', stray],
      ['notes.txt', 'notes'],
      ['.hidden.png', 'hidden'],
    ] as const)
      await putObject(s3, BUCKET, key(file), body);
    // Entries an earlier run (or another tool) recorded for those URLs.
    const entries = ['a.png', 'response.json', 'notes.txt', '.hidden.png'].map((file) => ({
      filename: file,
      s3_url: urlOf(name, file),
      s3_md5: null,
      status: 's3_only',
    }));
    mkdirSync(trainingDir(root, name), { recursive: true });
    writeFileSync(manifestPath(root, '0001'), JSON.stringify({ character_id: '0001', training_data: entries }));
    const r = await run(['pull', '--root', root, '--json', '--endpoint', server.endpoint, '--force-path-style']);
    expect(r.code, r.stderr).toBe(0);
    const summary = TransferSummarySchema.parse(JSON.parse(r.stdout));
    expect(summary.transfers.map((t) => [t.filename, t.error])).toEqual([['a.png', undefined]]);
    for (const file of ['response.json', 'notes.txt', '.hidden.png']) {
      expect(summary.warnings).toContainEqual(
        expect.objectContaining({
          file: urlOf(name, file),
          reason: expect.stringMatching(/is not an image name; not downloaded/),
        }),
      );
    }
    expect(readdirSync(trainingDir(root, name))).toEqual(['a.png']);
    const after = (await readJson(manifestPath(root, '0001'))).training_data as any[];
    expect(after.map((e) => [e.filename, e.s3_url, e.status])).toEqual([
      ['.hidden.png', urlOf(name, '.hidden.png'), 's3_only'],
      ['a.png', urlOf(name, 'a.png'), 'synced'],
      ['notes.txt', urlOf(name, 'notes.txt'), 's3_only'],
      ['response.json', urlOf(name, 'response.json'), 's3_only'],
    ]);
  });
});

describe('restore-legacy', () => {
  it('never writes through a training_data folder that is a symlink out of the data root', async () => {
    const root = await tempRoot();
    const outside = join(await tempRoot(), 'training_data'); // another temp folder: outside this data root
    mkdirSync(outside);
    mkdirSync(join(root, 'data', 'actors', '0003_z'), { recursive: true });
    symlinkSync(outside, trainingDir(root, '0003_z'));
    writeFileSync(
      manifestPath(root, '0003'),
      JSON.stringify({
        character_id: '0003',
        training_data: [{ filename: 'a.png', s3_url: `https://${BUCKET}.s3.us-west-1.amazonaws.com/x/0003_z/a.png` }],
      }),
    );
    const r = await run(['restore-legacy', '0003', '--root', root, '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${trainingDir(root, '0003_z')}: a symlink leading out of the actors folder; not followed, nothing restored`,
    );
    expect(readdirSync(outside)).toEqual([]);
  });

  it('refuses two actor folders sharing an id (one manifest), as sync does: neither gets a response.json', async () => {
    const root = await tempRoot();
    for (const name of ['0003_a', '0003_b']) mkdirSync(trainingDir(root, name), { recursive: true });
    writeFileSync(
      manifestPath(root, '0003'),
      JSON.stringify({
        character_id: '0003',
        training_data: [{ filename: 'a.png', s3_url: `https://${BUCKET}.s3.us-west-1.amazonaws.com/x/0003_a/a.png` }],
      }),
    );
    const r = await run(['restore-legacy', '--root', root, '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/2 actor folders share the id 0003 \(0003_a, 0003_b\).*; rename one; nothing restored/);
    for (const name of ['0003_a', '0003_b']) expect(readdirSync(trainingDir(root, name)), name).toEqual([]);
  });

  it("rebuilds response.json from the manifest's URLs and keeps an existing one unless --force", async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    expect((await run(['sync', '--root', root])).code).toBe(0);
    expect(existsSync(seed.response)).toBe(false);
    const dry = await run(['restore-legacy', '0', '--root', root, '--dry-run']);
    expect(dry.stdout).toMatch(/1 response.json would be restored/);
    expect(existsSync(seed.response)).toBe(false);
    const stale = await leaveStaleTemp(trainingDir(root, SEED_NAME), 'response.json'); // what a killed restore leaves
    // A user's copy, which may hold URLs found nowhere else: never touched.
    const copy = JSON.stringify({ output: { output: { s3_image_urls: [`${SEED_BASE}/${SEED_NAME}/only_here.png`] } } });
    writeFileSync(`${seed.response}.1`, copy);
    const r = await run(['restore-legacy', '0', '--root', root]);
    expect(r.code).toBe(0);
    expect(existsSync(stale)).toBe(false);
    expect(readFileSync(`${seed.response}.1`, 'utf8')).toBe(copy);
    const restored = await readJson(seed.response);
    expect(restored.output.output.s3_image_urls.sort()).toEqual([...SEED_URLS].sort());
    expect((await run(['restore-legacy', '--root', root])).stdout).toMatch(/0 response.json restored, 1 kept/);
    // The manifest holds every URL it lists, so the next sync may retire it again.
    expect((await run(['check', '--root', root, '--keep-legacy'])).code).toBe(0);
  });
});

const urlOf = (name: string, file: string) =>
  `https://${BUCKET}.s3.us-west-1.amazonaws.com/system_actors/training_data/${name}/${file}`;

/** `0001_push` with one image to upload, and each of `still` with one image its response.json names (nothing to upload). */
async function pushRoot(
  still: readonly string[],
): Promise<{ root: string; server: Awaited<ReturnType<typeof startS3Server>> }> {
  const root = await tempRoot();
  const server = await startS3Server([BUCKET]);
  await addImages(root, '0001_push', { 'a.png': 100 });
  for (const name of still) {
    await addImages(root, name, { 'b.png': 200 });
    await writeResponseJson(root, name, [urlOf(name, 'b.png')]);
  }
  return { root, server };
}

describe('push stopped by SIGINT while an upload is in flight', () => {
  it('records the upload that finished and leaves every other actor as it was (exit 130)', async () => {
    // 0001 has an image to upload; 0002 and 0003 nothing (their URLs are taken to be synced).
    const { root, server } = await pushRoot(['0002_still', '0003_still']);
    const proxy = await startFaultProxy(server.endpoint);
    const held = proxy.hold((request) => request.method === 'PUT');
    const push = startCli(
      ['push', '--root', root, '--endpoint', proxy.endpoint, '--force-path-style', '--json'],
      S3_ENV,
    );
    await pollUntil('the upload reaches S3', () => proxy.requests.some((request) => request.method === 'PUT'), {
      child: push.child,
    });
    let stderr = '';
    push.child.stderr!.on('data', (chunk: string) => (stderr += chunk));
    push.child.kill('SIGINT');
    await pollUntil('the interrupt is acknowledged', () => stderr.includes('SIGINT: finishing'), { child: push.child });
    held.release();
    const r = await push.done;
    expect(r.code).toBe(130);
    expect((await readJson(manifestPath(root, '0001'))).training_data).toMatchObject([
      { filename: 'a.png', status: 'synced', s3_url: urlOf('0001_push', 'a.png') },
    ]);
    for (const [id, name] of [
      ['0002', '0002_still'],
      ['0003', '0003_still'],
    ]) {
      expect(existsSync(manifestPath(root, id!))).toBe(false);
      expect(existsSync(join(trainingDir(root, name!), 'response.json'))).toBe(true);
    }
    const summary = TransferSummarySchema.parse(JSON.parse(r.stdout));
    expect(summary.actors).toMatchObject({ processed: 1, not_run: 2 });
  });
});

describe('push stopped by a signal in its recording pass', () => {
  it('records the actor whose upload finished; every actor without a transfer is left as it was', async () => {
    const still = ['0002_still', '0003_still', '0004_still'];
    const { root, server } = await pushRoot(still);
    const controller = new AbortController();
    let passes = 0;
    // The signal comes as the recording pass starts (the first pass plans, the second records).
    const progress = {
      start: () => void (++passes === 2 && controller.abort()),
      actorDone: () => undefined,
      stop: () => undefined,
    };
    const report = await runPush({
      root,
      s3: { endpoint: server.endpoint, forcePathStyle: true, credentials: TEST_CREDENTIALS },
      signal: controller.signal,
      progress,
      workers: 1,
    });
    expect(passes).toBe(2);
    expect(report.interrupted).toBe(true);
    expect(report.transfers.map((t) => [t.actor, t.filename, t.error])).toEqual([['0001_push', 'a.png', undefined]]);
    expect(report.actors.map((a) => [a.name, a.manifest])).toEqual([
      ['0001_push', 'created'],
      ...still.map((name) => [name, 'not-run']),
    ]);
    expect((await readJson(manifestPath(root, '0001'))).training_data).toMatchObject([
      { filename: 'a.png', status: 'synced' },
    ]);
    for (const name of still) {
      expect(existsSync(manifestPath(root, name.slice(0, 4)))).toBe(false);
      expect(existsSync(join(trainingDir(root, name), 'response.json'))).toBe(true);
    }
  });
});

describe('push stopped by a signal before any upload finished', () => {
  it('writes nothing: the selected actor and every other are left as they were', async () => {
    const { root, server } = await pushRoot(['0002_other']);
    const before = await snapshot(root);
    const proxy = await startFaultProxy(server.endpoint);
    const controller = new AbortController();
    // The signal comes with the upload, which then fails (a reset connection, every attempt).
    proxy.inject('reset', Infinity, (request) => request.method === 'PUT' && (controller.abort(), true));
    const s3 = { endpoint: proxy.endpoint, forcePathStyle: true, credentials: TEST_CREDENTIALS, maxAttempts: 1 };
    const report = await runPush({ root, actors: ['0001'], s3, signal: controller.signal, workers: 1 });
    expect(report.interrupted).toBe(true);
    expect(report.transfers).toHaveLength(1);
    expect(report.transfers[0]!.error).toBeDefined();
    expect(report.actors.map((a) => [a.name, a.manifest])).toEqual([['0001_push', 'not-run']]);
    expect(await snapshot(root)).toEqual(before);
  });
});
