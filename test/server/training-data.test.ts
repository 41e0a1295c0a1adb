/**
 * `GET /api/actors/:actorId/training-data` (SPEC §6) on a real server with a real HTTP client: the seed's
 * actor 0000 by every id form, real-time status without a `sync` (edited, new, deleted, replaced files),
 * `good`, `base_image_path` and `local_path` as URL paths this server answers, and a server that writes nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TrainingDataSchema, type TrainingData } from '../../src/server/schema.js';
import { runSync } from '../../src/engine/sync.js';
import {
  manifestPath,
  md5,
  readJson,
  SEED_NAME,
  SEED_URLS,
  seedActor0000,
  snapshot,
  tempRoot,
  trainingDir,
  writeManifest,
} from '../helpers/root.js';
import { getJson, serve, trainingDataPath } from '../helpers/server.js';

const name = (n: number, ext = 'png') => `${SEED_NAME}_${n}.${ext}`;

async function trainingData(url: string, actorId = '0000'): Promise<TrainingData> {
  const { status, headers, body } = await getJson(url + trainingDataPath(actorId));
  expect(status, JSON.stringify(body)).toBe(200);
  expect(headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(headers.get('cache-control')).toBe('no-store');
  expect(headers.get('x-content-type-options')).toBe('nosniff');
  return TrainingDataSchema.parse(body);
}

function image(data: TrainingData, filename: string) {
  return data.training_images.find((i) => i.filename === filename);
}

describe('the seed case: actor 0000', () => {
  it('answers 17 images, 12 synced and 5 local_only, by 0, 0000 and the full name, before any sync, writing nothing', async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const before = await snapshot(root);
    const server = await serve(root);

    const answers = await Promise.all(['0', '0000', SEED_NAME].map((id) => trainingData(server.url, id)));
    for (const data of answers) {
      expect(data).toMatchObject({
        actor_id: '0000',
        actor_name: SEED_NAME,
        total_count: 17,
        synced_count: 12,
        local_only_count: 5,
        s3_only_count: 0,
        out_of_sync_count: 0,
        missing_count: 0,
        // The manifest lists nothing yet: every image is one `sync` would add.
        untracked_count: 17,
        manifest_updated: null,
        base_image_path: null,
        base_image_url: null,
        has_base_image: false,
        training_data_good: false,
      });
      expect(data.training_images.map((i) => i.index)).toEqual([...Array(17).keys()]);
      expect(data.training_images.slice(0, 6).map((i) => i.filename)).toEqual([
        name(0),
        name(1),
        name(2),
        name(3),
        name(4, 'jpg'),
        name(4),
      ]);
      expect(data.training_images.filter((i) => i.status === 'local_only').map((i) => i.filename)).toEqual([
        name(0),
        name(1),
        name(2),
        name(3),
        name(4, 'jpg'),
      ]);
      expect(new Set(data.training_images.flatMap((i) => (i.s3_url ? [i.s3_url] : [])))).toEqual(new Set(SEED_URLS));
      for (const i of data.training_images) {
        expect(i).toMatchObject({
          local_exists: true,
          tracked: false,
          good: false,
          md5_hash: seed.hashes[i.filename],
          local_path: `/data/actors/${SEED_NAME}/training_data/${i.filename}`,
        });
        expect(i.size_mb).toBe(0.05);
        expect(new Date(i.modified_date!).getTime()).toBe(
          Number((await stat(join(root, i.local_path!), { bigint: true })).mtimeNs / 1_000_000n),
        );
      }
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    expect(await snapshot(root), 'the server wrote, moved or deleted nothing (response.json is still there)').toEqual(
      before,
    );
  });

  it('after a sync: the same counts, every image tracked, manifest_updated from the manifest', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const report = await runSync({ root, workers: 2, now: () => new Date('2025-10-17T16:30:00.000Z') });
    expect(report.actors[0]!.errors).toEqual([]);
    const server = await serve(root);
    const data = await trainingData(server.url);
    expect(data).toMatchObject({
      total_count: 17,
      synced_count: 12,
      local_only_count: 5,
      untracked_count: 0,
      manifest_updated: '2025-10-17T16:30:00.000Z',
    });
    expect(data.training_images.every((i) => i.tracked)).toBe(true);
    const manifest = await readJson(manifestPath(root, '0000'));
    // The manifest's path relative to the root, as a URL path: where this server answers with the file.
    expect(data.training_images.map((i) => i.local_path)).toEqual(
      manifest.training_data.map((e: { local_path: string }) => `/${e.local_path}`),
    );
  });
});

describe('real-time status, without a sync', () => {
  it('an edited synced image turns out_of_sync, a new one appears untracked, a deleted synced one turns s3_only, a deleted local_only one disappears', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await runSync({ root, workers: 2 });
    const server = await serve(root);
    const manifestBefore = await snapshot(join(root, 'data', 'actor_manifests'));
    const dir = trainingDir(root, SEED_NAME);

    const edited = Buffer.from('edited bytes');
    await writeFile(join(dir, name(6)), edited);
    const added = randomBytes(1000);
    await writeFile(join(dir, name(18)), added);
    await rm(join(dir, name(8)));
    await rm(join(dir, name(0)));

    const data = await trainingData(server.url);
    expect(data).toMatchObject({
      total_count: 17,
      synced_count: 10,
      local_only_count: 5,
      s3_only_count: 1,
      out_of_sync_count: 1,
      missing_count: 0,
      untracked_count: 1,
    });
    expect(image(data, name(6))).toMatchObject({
      status: 'out_of_sync',
      tracked: true,
      local_exists: true,
      md5_hash: md5(edited),
      size_mb: 0,
    });
    expect(image(data, name(18))).toMatchObject({
      status: 'local_only',
      tracked: false,
      local_exists: true,
      md5_hash: md5(added),
      s3_url: null,
    });
    // size_mb is the size the manifest recorded: the studio's newest UI calls size_mb.toFixed.
    expect(image(data, name(8))).toMatchObject({
      status: 's3_only',
      tracked: true,
      local_exists: false,
      local_path: null,
      md5_hash: null,
      size_mb: 0.05,
      modified_date: null,
    });
    expect(image(data, name(8))!.s3_url).toBe(SEED_URLS[SEED_URLS.findIndex((u) => u.endsWith(`/${name(8)}`))]);
    expect(
      image(data, name(0)),
      'a local_only image with no local file and no URL is dropped (SPEC §3)',
    ).toBeUndefined();
    expect(await snapshot(join(root, 'data', 'actor_manifests')), 'no manifest was written').toEqual(manifestBefore);
  });

  it('a file replaced with the same size and mtime is rehashed because its inode changed', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await runSync({ root, workers: 2 });
    const server = await serve(root);
    const dir = trainingDir(root, SEED_NAME);
    const target = join(dir, name(9));
    const old = await stat(target);
    const replacement = randomBytes(old.size);
    const temp = join(dir, '.replacement');
    await writeFile(temp, replacement);
    await utimes(temp, old.atime, old.mtime);
    await rename(temp, target);
    expect((await stat(target)).ino).not.toBe(old.ino);

    const data = await trainingData(server.url);
    expect(image(data, name(9))).toMatchObject({ status: 'out_of_sync', md5_hash: md5(replacement) });
    expect(data.synced_count).toBe(11);
  });
});

describe('fields from beside the manifest', () => {
  it('good comes from prompt_metadata.json; false when it says nothing', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await writeFile(
      join(trainingDir(root, SEED_NAME), 'prompt_metadata.json'),
      JSON.stringify({
        images: { [name(10)]: { good: true }, [name(11)]: { good: false }, [name(12)]: { prompt: 'x' } },
      }),
    );
    const server = await serve(root);
    const data = await trainingData(server.url);
    expect(data.training_images.filter((i) => i.good).map((i) => i.filename)).toEqual([name(10)]);
  });

  it('base_image_path: <name>_base.* in base_image/ first, else the first image there, else the poster frame, else null; as URL paths this server answers', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const actorDir = join(root, 'data', 'actors', SEED_NAME);
    const base = join(actorDir, 'base_image');
    await mkdir(base);
    await writeFile(join(base, 'a_first.png'), 'first');
    await writeFile(join(base, '.hidden.png'), 'x');
    const server = await serve(root);
    const basePath = async () => {
      const data = await trainingData(server.url);
      expect(data.has_base_image).toBe(data.base_image_path !== null);
      return data.base_image_path;
    };
    expect(await basePath()).toBe(`/data/actors/${SEED_NAME}/base_image/a_first.png`);
    const served = await fetch(`${server.url}/data/actors/${SEED_NAME}/base_image/a_first.png`);
    expect([served.status, served.headers.get('content-type'), await served.text()]).toEqual([
      200,
      'image/png',
      'first',
    ]);

    await writeFile(join(base, `${SEED_NAME}_base.png`), 'x');
    expect(await basePath()).toBe(`/data/actors/${SEED_NAME}/base_image/${SEED_NAME}_base.png`);

    // The studio's fallbacks, in its order: <name>_poster.png, <name>_poster.jpg, <name>.png, <name>.jpg.
    await rm(base, { recursive: true });
    await mkdir(join(actorDir, 'poster_frame'));
    await writeFile(join(actorDir, 'poster_frame', `${SEED_NAME}.jpg`), 'poster');
    await writeFile(join(actorDir, 'poster_frame', `${SEED_NAME}_poster_urls.json`), '{}');
    expect(await basePath()).toBe(`/data/actors/${SEED_NAME}/poster_frame/${SEED_NAME}.jpg`);
    await writeFile(join(actorDir, 'poster_frame', `${SEED_NAME}_poster.jpg`), 'poster');
    expect(await basePath()).toBe(`/data/actors/${SEED_NAME}/poster_frame/${SEED_NAME}_poster.jpg`);
    const poster = await fetch(`${server.url}/data/actors/${SEED_NAME}/poster_frame/${SEED_NAME}_poster.jpg`);
    expect([poster.status, poster.headers.get('content-type')]).toEqual([200, 'image/jpeg']);

    await rm(join(actorDir, 'poster_frame'), { recursive: true });
    expect(await basePath()).toBeNull();
  });
});

describe('an actor whose files cannot be read', () => {
  it('answers 500 with the file relative to the data root and the reason; no stack, no absolute path', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await writeFile(manifestPath(root, '0000'), '{ "character_id": "0000", ');
    const server = await serve(root);
    const { status, body } = await getJson(server.url + trainingDataPath('0000'));
    expect(status).toBe(500);
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toMatch(
      /^actor 0000_european_16_male cannot be read: data\/actor_manifests\/0000_manifest\.json: invalid JSON/,
    );
    expect(body.error).not.toContain(root);
    expect(body.error).not.toMatch(/\n\s+at /);
  });

  it('a manifest that is an array is a clear error too', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await writeManifest(root, '0000', [1, 2]);
    const server = await serve(root);
    const { status, body } = await getJson(server.url + trainingDataPath('0'));
    expect(status).toBe(500);
    expect(body.error).toContain('data/actor_manifests/0000_manifest.json');
  });
});
