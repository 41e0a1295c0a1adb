/**
 * Where an actor's files may be (SPEC §3 invariant 3): each actor's training_data and manifest resolve to
 * that actor alone, and the actors and manifests folders are roots of their own, wherever they are
 * (a symlink to another disk, `--actors-dir`, `--manifests-dir`).
 */
import { existsSync, mkdtempSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { mkdir, realpath, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { restoreLegacy } from '../src/engine/restore-legacy.js';
import { runSync, type SyncOptions } from '../src/engine/sync.js';
import {
  addImages,
  manifestPath,
  readJson,
  SEED_BASE,
  SEED_NAME,
  seedActor0000,
  snapshot,
  tempRoot,
  trainingDir,
  writeManifest,
} from './helpers/root.js';

const sync = (root: string, extra: Partial<SyncOptions> = {}) => runSync({ root, workers: 2, ...extra });

const elsewhere: string[] = [];
afterEach(() => {
  for (const dir of elsewhere.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A folder outside any data root (another disk, as far as the tool can tell). */
function outsideFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'actor-sync-elsewhere-'));
  elsewhere.push(dir);
  return dir;
}

describe('two actors reaching one training_data folder or manifest', () => {
  it("sync --actor 1, whose training_data links to 0000's: 0001 fails naming the shared folder; 0000's response.json and manifest are untouched", async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    await mkdir(join(root, 'data', 'actors', '0001_twin'));
    symlinkSync(trainingDir(root, SEED_NAME), trainingDir(root, '0001_twin'));
    const before = await snapshot(root);

    const report = await sync(root, { actors: ['1'] });
    expect(report.actors.map((a) => a.name)).toEqual(['0001_twin']);
    const shared = await realpath(trainingDir(root, SEED_NAME));
    expect(report.actors[0]!.errors).toEqual([
      {
        actor: '0001_twin',
        file: trainingDir(root, '0001_twin'),
        reason: expect.stringContaining(`is the same folder as the training_data of ${SEED_NAME} (${shared})`),
      },
    ]);
    expect(report.actors[0]!.errors[0]!.reason).toMatch(/left unchanged/);
    expect(existsSync(seed.response)).toBe(true);
    expect(existsSync(manifestPath(root, '0001'))).toBe(false);
    expect(await snapshot(root)).toEqual(before);

    // The whole root: both fail, and nothing is written or retired.
    const all = await sync(root);
    expect(all.actors.map((a) => [a.name, a.manifest, a.legacy])).toEqual([
      [SEED_NAME, 'failed', 'failed'],
      ['0001_twin', 'failed', 'failed'],
    ]);
    expect(all.actors[0]!.errors[0]!.reason).toContain(
      `is the same folder as the training_data of 0001_twin (${shared})`,
    );
    expect(await snapshot(root)).toEqual(before);
  });

  it("an actor folder that is a symlink to another actor's folder: both fail", async () => {
    const root = await tempRoot();
    await addImages(root, '0002_a', { 'a.png': 10 });
    symlinkSync('0002_a', join(root, 'data', 'actors', '0003_b'));
    const report = await sync(root);
    expect(report.actors.map((a) => [a.name, a.errors[0]?.file])).toEqual([
      ['0002_a', trainingDir(root, '0002_a')],
      ['0003_b', trainingDir(root, '0003_b')],
    ]);
    expect(existsSync(manifestPath(root, '0002'))).toBe(false);
  });

  it("a manifest that is a symlink to another actor's: both fail, run after run, and it is never rewritten", async () => {
    const root = await tempRoot();
    await addImages(root, '0002_a', { 'a.png': 10 });
    await addImages(root, '0003_b', { 'b.png': 10 });
    await writeManifest(root, '0002', { character_id: '0002', character_name: '0002_a' });
    symlinkSync('0002_manifest.json', manifestPath(root, '0003'));
    const before = await snapshot(root);
    for (const run of [1, 2]) {
      const report = await sync(root);
      expect(
        report.actors.map((a) => [a.name, a.errors[0]?.file]),
        `run ${run}`,
      ).toEqual([
        ['0002_a', manifestPath(root, '0002')],
        ['0003_b', manifestPath(root, '0003')],
      ]);
      expect(report.actors[1]!.errors[0]!.reason).toContain(
        `is the same file as the manifest of 0002_a (${await realpath(manifestPath(root, '0002'))})`,
      );
      expect(await snapshot(root), `run ${run}`).toEqual(before);
    }
  });

  it('restore-legacy writes no response.json through a training_data another actor reaches', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    expect((await sync(root)).actors[0]!.errors).toEqual([]);
    await mkdir(join(root, 'data', 'actors', '0001_twin'));
    symlinkSync(trainingDir(root, SEED_NAME), trainingDir(root, '0001_twin'));
    const report = await restoreLegacy({ root, actors: ['0'] });
    expect(report.errors).toEqual([
      {
        actor: SEED_NAME,
        file: trainingDir(root, SEED_NAME),
        reason: expect.stringMatching(/is the same folder as the training_data of 0001_twin .*nothing restored$/),
      },
    ]);
    expect(existsSync(join(trainingDir(root, SEED_NAME), 'response.json'))).toBe(false);
  });
});

describe('the actors and manifests folders are roots of their own', () => {
  it('data/actors as a symlink to another disk: every actor is found and synced, with no warning', async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const disk = outsideFolder();
    renameSync(join(root, 'data', 'actors'), join(disk, 'actors'));
    symlinkSync(join(disk, 'actors'), join(root, 'data', 'actors'));

    const report = await sync(root);
    expect(report.warnings).toEqual([]);
    expect(report.actors.map((a) => [a.name, a.manifest, a.legacy, a.errors])).toEqual([
      [SEED_NAME, 'written', 'retired', []],
    ]);
    const manifest = await readJson(seed.manifest);
    expect(manifest.training_data).toHaveLength(17);
    expect(manifest.training_data[0].local_path).toBe(`data/actors/${SEED_NAME}/training_data/${SEED_NAME}_0.png`);
  });

  it('--actors-dir and --manifests-dir outside the root: read and written there, no false "leading out"', async () => {
    const root = await tempRoot();
    const disk = outsideFolder();
    const actorsDir = join(disk, 'actors');
    const manifestsDir = join(disk, 'manifests');
    await mkdir(actorsDir);
    await mkdir(manifestsDir);
    const dir = join(actorsDir, '0002_a', 'training_data');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '0002_a_0.png'), 'image 0');
    // An image linked to another actor's, inside the actors folder: followed, as inside the default one.
    await mkdir(join(actorsDir, '0003_b', 'training_data'), { recursive: true });
    symlinkSync(join(dir, '0002_a_0.png'), join(actorsDir, '0003_b', 'training_data', '0003_b_0.png'));
    const url = `${SEED_BASE}/0002_a/0002_a_0.png`;
    await writeFile(join(dir, 'response.json'), JSON.stringify({ output: { output: { s3_image_urls: [url] } } }));
    await writeFile(
      join(manifestsDir, '0002_manifest.json'),
      `${JSON.stringify({ character_id: '0002', kept: true }, null, 2)}\n`,
    );

    const report = await sync(root, { actorsDir, manifestsDir });
    expect(report.warnings).toEqual([]);
    expect(report.actors.map((a) => [a.name, a.manifest, a.errors])).toEqual([
      ['0002_a', 'written', []],
      ['0003_b', 'created', []],
    ]);
    const manifest = await readJson(join(manifestsDir, '0002_manifest.json'));
    expect(manifest.kept).toBe(true);
    expect(manifest.training_data).toEqual([
      expect.objectContaining({ filename: '0002_a_0.png', s3_url: url, status: 'synced' }),
    ]);
    expect(existsSync(join(dir, 'response.json'))).toBe(false);
    expect((await readJson(join(manifestsDir, '0003_manifest.json'))).training_data).toEqual([
      expect.objectContaining({ filename: '0003_b_0.png', status: 'local_only' }),
    ]);
    expect(existsSync(manifestPath(root, '0002'))).toBe(false);
    // Again: nothing to do, from the cache or not.
    const again = await sync(root, { actorsDir, manifestsDir });
    expect(again.actors.map((a) => [a.manifest, a.errors])).toEqual([
      ['unchanged', []],
      ['unchanged', []],
    ]);
  });

  it("a symlink inside an actor's folder leading out of the actors folder is still not followed", async () => {
    const root = await tempRoot();
    const disk = outsideFolder();
    const actorsDir = join(disk, 'actors');
    const dir = join(actorsDir, '0002_a', 'training_data');
    await mkdir(dir, { recursive: true });
    await addImages(root, '0009_inside_root', { 'x.png': 10 });
    symlinkSync(join(trainingDir(root, '0009_inside_root'), 'x.png'), join(dir, 'escape.png'));
    const report = await sync(root, { actorsDir });
    expect(report.actors[0]!.warnings).toEqual([
      {
        actor: '0002_a',
        file: join(dir, 'escape.png'),
        reason: 'a symlink leading out of the actors folder; not followed',
      },
    ]);
    expect((await readJson(manifestPath(root, '0002'))).training_data).toEqual([]);
  });
});
