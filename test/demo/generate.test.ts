import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { actorName, generateDataRoot, type GeneratedRoot } from '../../demo/generate.js';

const BUCKET = 'https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data';
const SEED = '0000_european_16_male';
const FIXTURE = join(import.meta.dirname, '../fixtures/actor_maker-sample/data');

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'generate-test-'));
  dirs.push(dir);
  return join(dir, 'root');
}

async function md5s(g: GeneratedRoot): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const actor of g.actors) {
    for (const image of actor.images) {
      const bytes = await readFile(join(g.root, 'data/actors', actor.name, 'training_data', image));
      out.set(image, createHash('md5').update(bytes).digest('hex'));
    }
  }
  return out;
}

async function readJson(file: string): Promise<any> {
  return JSON.parse(await readFile(file, 'utf8'));
}

describe('actorName', () => {
  it('names actors in the studio style, matching the fixtures', () => {
    expect(actorName(0)).toBe('0000_european_16_male');
    expect(actorName(1)).toBe('0001_european_20_female');
    expect(actorName(2)).toBe('0002_european_35_female');
    expect(actorName(4)).toBe('0004_european_35_male');
    const names = Array.from({ length: 2890 }, (_, i) => actorName(i));
    for (const [i, name] of names.entries()) {
      expect(name).toMatch(/^\d{4}_[a-z]+_\d+_(male|female)$/);
      expect(name.startsWith(`${String(i).padStart(4, '0')}_`)).toBe(true);
    }
  });
});

describe('generateDataRoot', () => {
  it("makes actor 0000 exactly the seed's example", async () => {
    const g = await generateDataRoot(await tempRoot(), { actors: 1 });
    const td = join(g.root, 'data/actors', SEED, 'training_data');
    const listed = [4, 6, 8, 9, 10, 11, 12, 13]
      .map((i) => `${SEED}_${i}.png`)
      .concat([14, 15, 16, 17].map((i) => `${SEED}_${i}.jpg`));
    const local = [...listed, ...[0, 1, 2, 3].map((i) => `${SEED}_${i}.png`), `${SEED}_4.jpg`];

    const images = (await readdir(td)).filter((f) => /\.(png|jpg)$/.test(f));
    expect(images.sort()).toEqual([...local].sort());
    expect(g.actors[0]!.images.sort()).toEqual([...local].sort());

    const [png, jpg] = await Promise.all([readFile(join(td, `${SEED}_4.png`)), readFile(join(td, `${SEED}_4.jpg`))]);
    expect(jpg.equals(png)).toBe(true);

    const response = await readJson(join(td, 'response.json'));
    expect(response.status).toBe('COMPLETED');
    expect(response.output.status).toBe('success');
    expect(response.output.output.actor_id).toBe(SEED);
    expect(typeof response.delayTime).toBe('number');
    const urls = listed.map((f) => `${BUCKET}/${SEED}/${f}`);
    expect(response.output.output.s3_image_urls).toEqual(urls);
    expect(g.actors[0]!.legacyUrls).toEqual(urls);

    const manifest = await readJson(join(g.root, 'data/actor_manifests/0000_manifest.json'));
    expect(Object.keys(manifest)).toEqual([
      'character_id',
      'character_name',
      'metadata',
      'migration_timestamp',
      'base_images',
      'scene_images',
      'statistics',
      'status',
    ]);
    expect(manifest.character_id).toBe('0000');
    expect(manifest.character_name).toBe(SEED);
    expect(manifest.scene_images.length).toBeGreaterThan(0);
    expect(manifest).not.toHaveProperty('training_data');
  });

  it.runIf(existsSync(FIXTURE))("writes actor 0000's legacy files as the studio's own", async () => {
    const g = await generateDataRoot(await tempRoot(), { actors: 1 });
    for (const file of ['response.json', 'prompt_metadata.json']) {
      const rel = join('actors', SEED, 'training_data', file);
      expect(await readJson(join(g.root, 'data', rel))).toEqual(await readJson(join(FIXTURE, rel)));
    }
  });

  it('builds the default workload with the expected counts, sizes and files', async () => {
    const g = await generateDataRoot(await tempRoot(), { actors: 60 });
    expect(g.actors).toHaveLength(60);
    expect(g.actors.map((a) => a.name)).toEqual(Array.from({ length: 60 }, (_, i) => actorName(i)));
    expect(g.totalImages).toBe(g.actors.reduce((n, a) => n + a.images.length, 0));

    let bytes = 0;
    for (const actor of g.actors.slice(1)) {
      expect(actor.images.length).toBeGreaterThanOrEqual(15);
      expect(actor.images.length).toBeLessThanOrEqual(19);
    }
    for (const actor of g.actors) {
      const td = join(g.root, 'data/actors', actor.name, 'training_data');
      for (const image of actor.images) {
        const { size } = await stat(join(td, image));
        expect(size).toBeGreaterThanOrEqual(2_000);
        expect(size).toBeLessThanOrEqual(12_000);
        bytes += size;
      }
    }
    expect(g.totalBytes).toBe(bytes);

    const legacy = g.actors.filter((a) =>
      existsSync(join(g.root, 'data/actors', a.name, 'training_data/response.json')),
    );
    expect(legacy.map((a) => a.id)).toEqual(g.actors.filter((_, i) => i % 3 === 0).map((a) => a.id));
    expect(g.actors.filter((a) => a.legacyUrls.length > 0)).toEqual(legacy);

    // Every offline status appears: synced (listed and local), local_only, s3_only (listed, not local).
    const s3Only = legacy.filter((a) =>
      a.legacyUrls.some((u) => !a.images.includes(decodeURIComponent(u.split('/').pop()!))),
    );
    expect(s3Only.length).toBeGreaterThan(0);
    expect(s3Only.length).toBeLessThan(legacy.length);
    for (const actor of legacy.slice(1)) {
      const onDisk = actor.legacyUrls.filter((u) => actor.images.includes(decodeURIComponent(u.split('/').pop()!)));
      expect(onDisk).toHaveLength(12);
      const response = await readJson(join(g.root, 'data/actors', actor.name, 'training_data/response.json'));
      expect(response.output.output.s3_image_urls).toEqual(actor.legacyUrls);
      expect(response.output.output.actor_id ?? response.output.output.character_id).toBe(actor.name);
    }

    const manifests = await readdir(join(g.root, 'data/actor_manifests'));
    expect(manifests.sort()).toEqual(g.actors.filter((a) => a.hasManifest).map((a) => `${a.id}_manifest.json`));
    expect(g.actors.filter((a) => !a.hasManifest).length).toBe(3);
    for (const file of manifests) {
      const text = await readFile(join(g.root, 'data/actor_manifests', file), 'utf8');
      const manifest = JSON.parse(text);
      expect(text).toBe(`${JSON.stringify(manifest, null, 2)}\n`);
      expect(manifest).not.toHaveProperty('training_data');
      expect(manifest.character_id).toBe(file.slice(0, 4));
      expect(manifest.statistics.scene_images_count).toBe(manifest.scene_images.length);
    }
  });

  it('keeps prompt_metadata URLs within the actor’s legacy URLs', async () => {
    const g = await generateDataRoot(await tempRoot(), { actors: 40 });
    let withMetadata = 0;
    for (const actor of g.actors) {
      const file = join(g.root, 'data/actors', actor.name, 'training_data/prompt_metadata.json');
      if (!existsSync(file)) continue;
      withMetadata++;
      const { images } = await readJson(file);
      for (const [filename, entry] of Object.entries<any>(images)) {
        expect(actor.images).toContain(filename);
        if (entry.s3_url !== undefined) expect(actor.legacyUrls).toContain(entry.s3_url);
        if (entry.good !== undefined) expect(typeof entry.good).toBe('boolean');
      }
    }
    expect(withMetadata).toBeGreaterThan(3);
    expect(withMetadata).toBeLessThan(40);
  });

  it('gives every image distinct bytes except the deliberate duplicate', async () => {
    const g = await generateDataRoot(await tempRoot(), { actors: 12 });
    const hashes = await md5s(g);
    expect(new Set(hashes.values()).size).toBe(hashes.size - 1);
    expect(hashes.get(`${SEED}_4.jpg`)).toBe(hashes.get(`${SEED}_4.png`));
  });

  it('is deterministic: same seed → same bytes, different seed → different', async () => {
    const [a, b, c] = await Promise.all([
      generateDataRoot(await tempRoot(), { actors: 8, seed: 7 }),
      generateDataRoot(await tempRoot(), { actors: 8, seed: 7 }),
      generateDataRoot(await tempRoot(), { actors: 8, seed: 8 }),
    ]);
    const [ha, hb, hc] = await Promise.all([md5s(a), md5s(b), md5s(c)]);
    expect([...hb]).toEqual([...ha]);
    expect({ ...a, root: '' }).toEqual({ ...b, root: '' });
    for (const file of ['data/actor_manifests/0001_manifest.json', `data/actors/${SEED}/training_data/response.json`]) {
      expect(await readFile(join(b.root, file), 'utf8')).toBe(await readFile(join(a.root, file), 'utf8'));
    }
    const shared = [...hc.keys()].filter((k) => ha.has(k));
    expect(shared.length).toBeGreaterThan(0);
    expect(shared.filter((k) => ha.get(k) === hc.get(k))).toEqual([]);

    const mtime = (g: GeneratedRoot) => stat(join(g.root, 'data/actors', SEED, 'training_data', `${SEED}_0.png`));
    expect((await mtime(a)).mtimeMs).toBe((await mtime(b)).mtimeMs);
    expect((await mtime(a)).mtimeMs).toBeLessThan(Date.now() - 86_400_000);
  });

  it('makes actor N the same whatever the number of actors', async () => {
    const [small, large] = await Promise.all([
      generateDataRoot(await tempRoot(), { actors: 3 }),
      generateDataRoot(await tempRoot(), { actors: 6 }),
    ]);
    expect(large.actors.slice(0, 3)).toEqual(small.actors);
    const [hs, hl] = await Promise.all([md5s(small), md5s(large)]);
    for (const [file, hash] of hs) expect(hl.get(file)).toBe(hash);
  });

  it('honours the size, count, legacy and manifest options', async () => {
    const g = await generateDataRoot(await tempRoot(), {
      actors: 7,
      imagesPerActor: 5,
      minBytes: 900,
      maxBytes: 1_000,
      legacyEvery: 0,
      seedActor0000: false,
      richManifests: false,
      bucketUrl: 'http://127.0.0.1:4568/bucket/',
    });
    for (const actor of g.actors) {
      expect(actor.images.length).toBeGreaterThanOrEqual(3);
      expect(actor.images.length).toBeLessThanOrEqual(7);
      expect(actor.legacyUrls).toEqual([]);
      for (const image of actor.images) {
        const { size } = await stat(join(g.root, 'data/actors', actor.name, 'training_data', image));
        expect(size).toBeGreaterThanOrEqual(900);
        expect(size).toBeLessThanOrEqual(1_000);
      }
    }
    expect(existsSync(join(g.root, 'data/actors', SEED, 'training_data/response.json'))).toBe(false);
    expect(await readJson(join(g.root, 'data/actor_manifests/0001_manifest.json'))).toEqual({
      character_id: '0001',
      character_name: '0001_european_20_female',
    });

    const custom = await generateDataRoot(await tempRoot(), { actors: 1, bucketUrl: 'http://127.0.0.1:4568/bucket/' });
    expect(custom.actors[0]!.legacyUrls[0]).toBe(`http://127.0.0.1:4568/bucket/${SEED}/${SEED}_4.png`);
  });

  it('generates a small run quickly, into a missing or empty directory only', async () => {
    const root = await tempRoot();
    const g = await generateDataRoot(root, { actors: 5 });
    expect(g.actors).toHaveLength(5);
    await expect(generateDataRoot(root, { actors: 5 })).rejects.toThrow(/not empty/);
    const file = join(root, '..', 'a-file');
    await writeFile(file, '');
    await expect(generateDataRoot(file)).rejects.toThrow(/is a file/);
  });

  it('rejects invalid options, naming the option', async () => {
    const root = await tempRoot();
    await expect(generateDataRoot(root, { actors: -1 })).rejects.toThrow(/options\.actors/);
    await expect(generateDataRoot(root, { imagesPerActor: 1.5 })).rejects.toThrow(/options\.imagesPerActor/);
    await expect(generateDataRoot(root, { minBytes: 0 })).rejects.toThrow(/options\.minBytes/);
    await expect(generateDataRoot(root, { minBytes: 10, maxBytes: 5 })).rejects.toThrow(/options\.maxBytes/);
    await expect(generateDataRoot(root, { legacyEvery: -3 })).rejects.toThrow(/options\.legacyEvery/);
    await expect(generateDataRoot(root, { bucketUrl: '' })).rejects.toThrow(/options\.bucketUrl/);
    expect(existsSync(root)).toBe(false);
  });
});
