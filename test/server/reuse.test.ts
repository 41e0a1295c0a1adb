/**
 * An actor's last answer is reused while the fingerprint the sync cache uses still stands (reuse.ts), on a
 * real server with real worker threads; the pool is the real one, wrapped to count the assessments it runs.
 * Reuse: two lists and a single answer cost one assessment per actor. Invalidation: a changed image, manifest
 * or prompt_metadata.json re-assesses its actor only, and the answer is the new state. The last folder scan is
 * reused for a route naming one actor only while the folders hold the entries it saw.
 */
import { randomBytes } from 'node:crypto';
import { lutimes, mkdir, readFile, rename, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPool, type WorkerPool } from '../../src/engine/pool.js';
import { ListedActorSchema, TrainingDataSchema } from '../../src/server/schema.js';
import { runSync } from '../../src/engine/sync.js';
import { addImages, manifestPath, md5, tempRoot, trainingDir } from '../helpers/root.js';
import { getJson, serve, trainingDataPath } from '../helpers/server.js';

const NAMES = ['0000_a', '0001_b', '0002_c'];

/** Three actors of four images each, synced: every actor at rest. Images are dated an hour back (racily clean). */
async function syncedRoot(): Promise<string> {
  const root = await tempRoot();
  const hourAgo = new Date(Date.now() - 3600_000);
  for (const name of NAMES) {
    const files = [`${name}_1.png`, `${name}_2.png`, `${name}_3.jpg`, `${name}_4.png`];
    await addImages(root, name, Object.fromEntries(files.map((file) => [file, 2000])));
    for (const file of files) await utimes(join(trainingDir(root, name), file), hourAgo, hourAgo);
  }
  const report = await runSync({ root, workers: 2 });
  expect(report.actors.flatMap((actor) => actor.errors)).toEqual([]);
  return root;
}

/** The real pool, counting the assessments it runs, by actor name. */
function countingPool(assessed: string[]): (threads: number | undefined) => WorkerPool {
  return (threads) => {
    const pool = createPool(threads);
    return { ...pool, threads: pool.threads, assess: (task) => (assessed.push(task.actor.name), pool.assess(task)) };
  };
}

/** A synced root served with a counting pool, listed once (each actor assessed, its answer kept); the count reset. */
async function listedOnce() {
  const root = await syncedRoot();
  const assessed: string[] = [];
  const server = await serve(root, { createPool: countingPool(assessed) });
  await list(server.url);
  assessed.length = 0;
  return { root, assessed, server };
}

async function list(url: string) {
  const { status, body } = await getJson(`${url}/api/actors`);
  expect(status).toBe(200);
  return (body as unknown[]).map((entry) => ListedActorSchema.parse(entry));
}

describe("reuse of an actor's last answer", () => {
  it("two lists and then each actor's training-data cost one assessment per actor, with the same answers", async () => {
    const root = await syncedRoot();
    const assessed: string[] = [];
    const server = await serve(root, { createPool: countingPool(assessed) });
    const first = await list(server.url);
    expect(assessed.sort()).toEqual(NAMES);
    const second = await list(server.url);
    expect(second).toEqual(first);
    for (const name of NAMES) {
      const { status, body } = await getJson(server.url + trainingDataPath(name));
      expect(status).toBe(200);
      expect(TrainingDataSchema.parse(body).synced_count + TrainingDataSchema.parse(body).local_only_count).toBe(4);
    }
    expect(assessed, 'nothing was assessed again').toHaveLength(NAMES.length);
  });

  it('an edited image re-assesses its actor only, and the answer shows the edit', async () => {
    const { root, assessed, server } = await listedOnce();
    const edited = randomBytes(3000);
    await writeFile(join(trainingDir(root, '0001_b'), '0001_b_2.png'), edited);
    const rows = await list(server.url);
    expect(assessed).toEqual(['0001_b']);
    const { body } = await getJson(server.url + trainingDataPath('0001'));
    expect(
      TrainingDataSchema.parse(body).training_images.find((image) => image.filename === '0001_b_2.png'),
    ).toMatchObject({ md5_hash: md5(edited), size_mb: 0 });
    expect(rows.map((row) => row.total_count)).toEqual([4, 4, 4]);
  });

  it('a changed manifest, prompt_metadata.json or a new image each re-assess their actor only', async () => {
    const { root, assessed, server } = await listedOnce();
    const manifest = JSON.parse(await readFile(manifestPath(root, '0000'), 'utf8'));
    await writeFile(manifestPath(root, '0000'), JSON.stringify({ ...manifest, notes: 'edited by hand' }, null, 2));
    await list(server.url);
    expect(assessed).toEqual(['0000_a']);

    assessed.length = 0;
    await writeFile(
      join(trainingDir(root, '0002_c'), 'prompt_metadata.json'),
      JSON.stringify({ images: { '0002_c_1.png': { good: true } } }),
    );
    await list(server.url);
    expect(assessed, 'the manifest 0000 was rewritten after its images: 0000_a is at rest again').toEqual(['0002_c']);
    const { body } = await getJson(server.url + trainingDataPath('0002'));
    expect(
      TrainingDataSchema.parse(body).training_images.find((image) => image.filename === '0002_c_1.png')!.good,
    ).toBe(true);

    assessed.length = 0;
    await mkdir(trainingDir(root, '0001_b'), { recursive: true });
    await addImages(root, '0001_b', { '0001_b_5.png': 1000 });
    const rows = await list(server.url);
    expect(assessed, 'prompt_metadata.json is no image: 0002_c is at rest again').toEqual(['0001_b']);
    expect(rows.find((row) => row.actor_name === '0001_b')).toMatchObject({ total_count: 5, untracked_count: 1 });
  });
});

/**
 * The checks from stats alone (fingerprint.ts `unchangedSince`) trust a file's or folder's stat token only once
 * its ctime is two seconds old, which a test cannot date back: the server's clock (this process's) is set an
 * hour ahead instead, so every token is trusted and each change below must be told by the stats alone.
 */
describe('reuse told from stat tokens', () => {
  afterEach(() => void vi.useRealTimers());

  async function listedWithTrustedTokens(prepare: (root: string) => Promise<void> = async () => undefined) {
    const listed = await listedOnce();
    await prepare(listed.root);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 3600_000 });
    await list(listed.server.url); // the checks that say yes keep what they saw, tokens trusted
    expect(listed.assessed).toEqual([]);
    return listed;
  }

  it('a manifest rewritten in place to the same size, its mtime put back, re-assesses its actor (its ctime tells)', async () => {
    // Dated to a whole second (after its images), so its mtime can be put back exactly.
    const { root, assessed, server } = await listedWithTrustedTokens((at) =>
      utimes(
        manifestPath(at, '0001'),
        new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000),
        new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000),
      ),
    );
    const path = manifestPath(root, '0001');
    const before = await stat(path, { bigint: true });
    const text = await readFile(path, 'utf8');
    const recorded = md5(await readFile(join(trainingDir(root, '0001_b'), '0001_b_1.png')));
    expect(text).toContain(recorded);
    await writeFile(path, text.replace(recorded, 'f'.repeat(32)));
    await utimes(path, before.atime, before.mtime);
    expect(await stat(path, { bigint: true })).toMatchObject({
      size: before.size,
      mtimeNs: before.mtimeNs,
      ino: before.ino,
    });
    await list(server.url);
    expect(assessed, 'the same size, mtime and inode, yet other bytes').toEqual(['0001_b']);
  });

  it('an image edited in place, a response.json, a new prompt_metadata.json: each re-assesses its actor only', async () => {
    const { root, assessed, server } = await listedWithTrustedTokens();
    await writeFile(join(trainingDir(root, '0000_a'), '0000_a_1.png'), randomBytes(2000));
    await writeFile(join(trainingDir(root, '0001_b'), 'response.json'), '{}');
    await writeFile(
      join(trainingDir(root, '0002_c'), 'prompt_metadata.json'),
      JSON.stringify({ images: { '0002_c_1.png': { good: true } } }),
    );
    await list(server.url);
    expect(assessed.sort()).toEqual(NAMES);
    assessed.length = 0;
    await list(server.url);
    expect(assessed, 'the edited image awaits a sync and response.json one to retire; 0002_c is at rest again').toEqual(
      ['0000_a', '0001_b'],
    );
  });
});

describe("the check of one actor's last answer", () => {
  it('reads a large manifest only in a worker thread (its actor assessed again), not in the thread serving every request; a small one in this thread', async () => {
    const root = await syncedRoot();
    const manifest = JSON.parse(await readFile(manifestPath(root, '0000'), 'utf8'));
    await writeFile(manifestPath(root, '0000'), JSON.stringify({ ...manifest, notes: 'x'.repeat(1_100_000) }, null, 2));
    const assessed: string[] = [];
    const server = await serve(root, { createPool: countingPool(assessed) });
    for (const id of ['0000', '0000', '0001', '0001'])
      expect((await getJson(server.url + trainingDataPath(id))).status).toBe(200);
    expect(
      assessed,
      "the large manifest is assessed again in a worker, never read here; the small one's answer reused",
    ).toEqual(['0000_a', '0000_a', '0001_b']);
  });
});

/** Dates a folder an hour back, so its token is trusted (a folder changed within the last second is not). */
async function settleFolder(path: string): Promise<void> {
  const hourAgo = new Date(Date.now() - 3600_000);
  await utimes(path, hourAgo, hourAgo);
}

describe('the last folder scan, for a route naming one actor', () => {
  it('is not used once the actors folder has a new entry: the new actor is found', async () => {
    const root = await syncedRoot();
    for (const folder of ['actors', 'actor_manifests']) await settleFolder(join(root, 'data', folder));
    const server = await serve(root);
    expect((await getJson(server.url + trainingDataPath('0000'))).status).toBe(200);
    await addImages(root, '0003_d', { '0003_d_1.png': 1000 });
    await settleFolder(join(root, 'data', 'actors')); // its mtime as before; its ctime tells
    const { status, body } = await getJson(server.url + trainingDataPath('0003'));
    expect(status).toBe(200);
    expect(TrainingDataSchema.parse(body)).toMatchObject({ actor_name: '0003_d', total_count: 1 });
  });

  it("is not used for an actor whose training_data became a symlink to another's: 409, as sync refuses it", async () => {
    const root = await syncedRoot();
    for (const folder of ['actors', 'actor_manifests']) await settleFolder(join(root, 'data', folder));
    const server = await serve(root);
    expect((await getJson(server.url + trainingDataPath('0001'))).status).toBe(200);
    // Inside the actor's own folder: the actors folder does not change.
    await rename(trainingDir(root, '0001_b'), join(root, 'data', 'actors', '0001_b', 'old'));
    await symlink(trainingDir(root, '0000_a'), trainingDir(root, '0001_b'));
    const { status, body } = await getJson(server.url + trainingDataPath('0001'));
    expect([status, body]).toEqual([
      409,
      {
        error:
          "its training_data is also the training_data of 0000_a (a symlink); an actor's training_data must be its own",
      },
    ]);
  });

  it('is not used once the folder a symlinked actors folder leads to has a new entry: a shared id answers 409', async () => {
    const root = await syncedRoot();
    const actors = join(root, 'data', 'actors');
    const elsewhere = join(root, 'elsewhere');
    await rename(actors, elsewhere);
    await symlink(elsewhere, actors);
    const hourAgo = new Date(Date.now() - 3600_000);
    await lutimes(actors, hourAgo, hourAgo); // the link itself never changes again
    for (const folder of [elsewhere, join(root, 'data', 'actor_manifests')]) await settleFolder(folder);
    const server = await serve(root);
    expect((await getJson(server.url + trainingDataPath('0001'))).status).toBe(200);
    await addImages(root, '0001_c', { '0001_c_1.png': 1000 });
    await settleFolder(elsewhere); // its mtime as before; its ctime tells
    const { status, body } = await getJson(server.url + trainingDataPath('0001'));
    expect([status, body]).toEqual([409, { error: '"0001" names 2 actors (0001_b, 0001_c); use the full name' }]);
  });
});
