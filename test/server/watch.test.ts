/**
 * The actor list's change watches (watch.ts), on a real served root with real inotify watches and worker
 * threads: a change written just before a request shows in its answer, and any watch that cannot be trusted
 * (never set, errored, silent like a network file system's) puts its actors back on the check by stats.
 * The pool counts the assessments it runs, so "looked again" is observable even when the row is the same.
 */
import { randomBytes } from 'node:crypto';
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPool, type WorkerPool } from '../../src/engine/pool.js';
import { ListedActorSchema } from '../../src/server/schema.js';
import type { WatchOptions } from '../../src/server/watch.js';
import { runSync } from '../../src/engine/sync.js';
import { addImages, manifestPath, tempRoot, trainingDir } from '../helpers/root.js';
import { getJson, serve } from '../helpers/server.js';

const IMAGES = 3;
/** Long enough that no check by stats comes from the trust period during a test (except where it is the point). */
const LONG = 10 * 60_000;

const nameOf = (i: number) => `${String(i).padStart(4, '0')}_a${i}`;
const imageOf = (i: number, n: number) => `${nameOf(i)}_${n}.png`;

/** `count` actors of three images each, synced, listed in data/actorsData.json; images dated an hour back. */
async function syncedRoot(count: number): Promise<string> {
  const root = await tempRoot();
  const hourAgo = new Date(Date.now() - 3600_000);
  for (let i = 0; i < count; i += 1) {
    const files = Array.from({ length: IMAGES }, (_, n) => imageOf(i, n));
    await addImages(root, nameOf(i), Object.fromEntries(files.map((file) => [file, 2000])));
    for (const file of files) await utimes(join(trainingDir(root, nameOf(i)), file), hourAgo, hourAgo);
  }
  await writeFile(
    join(root, 'data', 'actorsData.json'),
    JSON.stringify(Array.from({ length: count }, (_, i) => ({ id: i, name: nameOf(i) }))),
  );
  const report = await runSync({ root, workers: 2 });
  expect(report.actors.flatMap((actor) => actor.errors)).toEqual([]);
  return root;
}

/** Served with a counting pool and listed until every actor is answered from its watches (the third list assesses nothing). */
async function servedWarm(root: string, watching: WatchOptions) {
  const assessed: string[] = [];
  const pool = (threads: number | undefined): WorkerPool => {
    const real = createPool(threads);
    return { ...real, threads: real.threads, assess: (task) => (assessed.push(task.actor.name), real.assess(task)) };
  };
  const server = await serve(root, { createPool: pool, watching });
  await list(server.url); // assessed
  await list(server.url); // checked by stats, its watch's mark kept
  assessed.length = 0;
  await list(server.url);
  expect(assessed).toEqual([]);
  return { server, assessed };
}

async function list(url: string) {
  const { status, body } = await getJson(`${url}/api/actors`);
  expect(status).toBe(200);
  return (body as unknown[]).map((entry) => ListedActorSchema.parse(entry));
}

const imagePath = (root: string, i: number, n: number) => join(trainingDir(root, nameOf(i)), imageOf(i, n));
const newActor = (i: number) => `9${String(i).padStart(3, '0')}_new`;

/** Each change, made to actor `i`, and the actor that must then be assessed again (none for actorsData.json). */
const CHANGES: { what: string; make(root: string, i: number): Promise<void>; reassessed?(i: number): string }[] = [
  {
    what: 'an image rewritten in place, same size',
    make: (root, i) => writeFile(imagePath(root, i, 0), randomBytes(2000)),
    reassessed: nameOf,
  },
  {
    what: 'an image touched',
    make: (root, i) => utimes(imagePath(root, i, 0), new Date(), new Date()),
    reassessed: nameOf,
  },
  {
    what: 'an image added',
    make: async (root, i) => void (await addImages(root, nameOf(i), { [imageOf(i, 9)]: 2000 })),
    reassessed: nameOf,
  },
  { what: 'an image removed', make: (root, i) => rm(imagePath(root, i, 0)), reassessed: nameOf },
  {
    what: 'an image renamed',
    make: (root, i) => rename(imagePath(root, i, 0), imagePath(root, i, 8)),
    reassessed: nameOf,
  },
  {
    what: 'the manifest edited (an image dropped from it)',
    make: async (root, i) => {
      const path = manifestPath(root, nameOf(i).slice(0, 4));
      const manifest = JSON.parse(await readFile(path, 'utf8'));
      manifest.training_data = manifest.training_data.slice(1);
      await writeFile(path, JSON.stringify(manifest, null, 2));
    },
    reassessed: nameOf,
  },
  {
    what: 'data/actorsData.json edited',
    make: async (root, i) => {
      const path = join(root, 'data', 'actorsData.json');
      const entries = JSON.parse(await readFile(path, 'utf8'));
      entries[i].description = `edited ${i}`;
      await writeFile(path, JSON.stringify(entries));
    },
  },
  {
    what: 'an actor folder added',
    make: async (root, i) => void (await addImages(root, newActor(i), { 'new_1.png': 2000 })),
    reassessed: newActor,
  },
];

/**
 * A second server on the same root whose watches are never trusted (every actor checked by stats, as before
 * the watches): what the list must say.
 */
async function reference(root: string) {
  const server = await serve(root, { watching: { trustMs: 0 } });
  return () => list(server.url);
}

describe('the actor list answered from change watches', () => {
  afterEach(() => void vi.useRealTimers());

  it('shows every change written before the request was sent (32 changes, each followed at once by a GET)', async () => {
    const rounds = 4;
    const root = await syncedRoot(CHANGES.length * rounds);
    const { server, assessed } = await servedWarm(root, { trustMs: LONG });
    const truth = await reference(root);
    for (let i = 0; i < CHANGES.length * rounds; i += 1) {
      const change = CHANGES[i % CHANGES.length]!;
      assessed.length = 0;
      await change.make(root, i);
      const rows = await list(server.url);
      expect(rows, `${change.what} (actor ${nameOf(i)})`).toEqual(await truth());
      // Actors changed earlier may be assessed again each time (one whose manifest sync would rewrite is never reused).
      if (change.reassessed) expect(assessed, change.what).toContain(change.reassessed(i));
    }
  }, 120_000);

  it("refuses both actors at once when an actor with no kept answer gets a symlink to another's training_data", async () => {
    // Never synced: each answer would write its manifest, so none is kept for reuse.
    const root = await tempRoot();
    for (const name of ['0000_a', '0001_b']) await addImages(root, name, { [`${name}_1.png`]: 2000 });
    const server = await serve(root, { watching: { trustMs: LONG } });
    expect((await list(server.url)).map((row) => row.error)).toEqual([null, null]);
    // Inside the actor's own folder: the actors folder does not change.
    await rename(trainingDir(root, '0001_b'), join(root, 'data', 'actors', '0001_b', 'old'));
    await symlink(trainingDir(root, '0000_a'), trainingDir(root, '0001_b'));
    const rows = await list(server.url);
    expect(rows.map((row) => row.error)).toEqual([
      expect.stringContaining('also the training_data of 0001_b'),
      expect.stringContaining('also the training_data of 0000_a'),
    ]);
    expect(rows).toEqual(await (await reference(root))());
  });

  it('checks by stats an actor whose training_data could not be watched (the inotify limit)', async () => {
    const root = await syncedRoot(3);
    const refused = trainingDir(root, nameOf(1));
    const watch: WatchOptions['watch'] = (path, listener) => {
      if (path.endsWith(join(nameOf(1), 'training_data')))
        throw Object.assign(new Error(`ENOSPC: System limit for number of file watchers reached, watch '${refused}'`), {
          code: 'ENOSPC',
        });
      return fsWatch(path, listener);
    };
    const { server, assessed } = await servedWarm(root, { watch, trustMs: LONG });
    await writeFile(join(refused, imageOf(1, 0)), randomBytes(2000));
    expect(await list(server.url)).toEqual(await (await reference(root))());
    expect(assessed).toEqual([nameOf(1)]);
  });

  it('checks by stats an actor whose watch errored (and no longer reports)', async () => {
    const root = await syncedRoot(3);
    const watchers = new Map<string, FSWatcher>();
    const watch: WatchOptions['watch'] = (path, listener) => {
      const watcher = fsWatch(path, listener);
      watchers.set(path, watcher);
      return watcher;
    };
    const { server, assessed } = await servedWarm(root, { watch, trustMs: LONG });
    const [path, watcher] = [...watchers].find(([watched]) => watched.endsWith(join(nameOf(2), 'training_data')))!;
    watcher.emit('error', Object.assign(new Error('EINVAL'), { code: 'EINVAL' }));
    await writeFile(join(path, imageOf(2, 1)), randomBytes(2000));
    expect(await list(server.url)).toEqual(await (await reference(root))());
    expect(assessed).toEqual([nameOf(2)]);
  });

  it('checks by stats after the wall clock is stepped back: the trust period is timed on a monotonic clock', async () => {
    const root = await syncedRoot(3);
    const silent = await tempRoot();
    const watch: WatchOptions['watch'] = (_, listener) => fsWatch(silent, listener);
    const { server, assessed } = await servedWarm(root, { watch, trustMs: 0 });
    // Watches that report nothing and no trust period: only a check younger than 0 ms could skip the stats.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 3600_000 });
    await writeFile(imagePath(root, 0, 2), randomBytes(2000));
    expect(await list(server.url)).toEqual(await (await reference(root))());
    expect(assessed).toEqual([nameOf(0)]);
  });

  it('checks every actor by stats once the trust period is over, as on a network file system that reports nothing', async () => {
    const root = await syncedRoot(3);
    const silent = await tempRoot();
    // Every watch set on an empty folder of its own: like another machine's writes on NFS, nothing is reported.
    const watch: WatchOptions['watch'] = (_, listener) => fsWatch(silent, listener);
    const { server, assessed } = await servedWarm(root, { watch, trustMs: 0 });
    await writeFile(imagePath(root, 0, 2), randomBytes(2000));
    expect(await list(server.url)).toEqual(await (await reference(root))());
    expect(assessed).toEqual([nameOf(0)]);
  });
});
