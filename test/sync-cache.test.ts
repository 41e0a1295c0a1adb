/**
 * The sync cache: a run that settles actors from it ends exactly as one that assesses every actor, and it
 * really is used. Real files in temp dirs, real worker threads; the pool is counted to tell which actors a
 * run sent to a thread (the others the cache settled).
 */
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachePath, newerThanManifests } from '../src/cache/path.js';
import { createPool, type WorkerPool } from '../src/engine/pool.js';
import { shardOf, type Shard } from '../src/engine/shard.js';
import { summarize } from '../src/engine/summary.js';
import { codeIdentity, readCache } from '../src/cache/sync-cache.js';
import { plan, runSync, type SyncOptions, type SyncReport } from '../src/engine/sync.js';
import { comparable, manifestsDirOf, readManifests, runCli } from './helpers/cli.js';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { putObject, startS3Server, TEST_CREDENTIALS, testS3 } from './helpers/s3.js';
import {
  addImages,
  leaveStaleTemp,
  manifestPath,
  md5,
  readJson,
  SEED_BASE,
  SEED_LISTED,
  SEED_NAME,
  seedActor0000,
  snapshot,
  tempRoot,
  trainingDir,
  writeManifest,
  writeResponseJson,
} from './helpers/root.js';

const A1 = '0001_alpha';
const A2 = '0002_beta';
const A3 = '0003_gamma';
const BUCKET = 'story-boards-assets'; // never changed by the differential test: every warm run must settle it
/** Whole seconds: utimes and a copy keep them to the nanosecond, and every image is older than any manifest. */
const T0 = 1_700_000_000;

let real: WorkerPool;
const assessed: string[] = [];
let starts = 0; // calls of start(): a run asking for its threads before any actor needs one
const pool: WorkerPool = {
  get threads() {
    return real.threads;
  },
  assess: (task) => {
    assessed.push(task.actor.name);
    return real.assess(task);
  },
  urls: (task) => real.urls(task),
  hash: (task) => real.hash(task),
  start: () => {
    starts += 1;
    real.start();
  },
  destroy: async () => undefined, // the file's own, destroyed after all
};
beforeAll(() => {
  real = createPool(2);
});
afterAll(() => real.destroy());

/** One in-process sync with `$XDG_CACHE_HOME` = `home`; `assessed`: the actors it sent to a thread (the cache did not settle them). */
async function sync(
  root: string,
  home: string,
  extra: Partial<SyncOptions> = {},
  run = runSync,
): Promise<{ report: SyncReport; assessed: string[] }> {
  const saved = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = home;
  assessed.length = 0;
  try {
    const report = await run({ root, pool, ...extra });
    return { report, assessed: [...assessed].sort() };
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
  }
}

const cacheOf = (root: string, home: string, shard?: Shard) =>
  cachePath(realpathSync(manifestsDirOf(root)), shard, { XDG_CACHE_HOME: home });
const image = (root: string, actor: string, n: number | string, ext = 'png') =>
  join(trainingDir(root, actor), `${actor}_${n}.${ext}`);
const url = (actor: string, file: string) => `${SEED_BASE}/${actor}/${file}`;
const pin = (path: string, seconds = T0) => utimesSync(path, seconds, seconds);
const statsOf = (report: SyncReport, name: string) => report.actors.find((a) => a.name === name)!.statistics!;

/** Gives every image under the root the mtime T0. */
function backdate(root: string): void {
  for (const entry of readdirSync(join(root, 'data', 'actors'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && /\.(png|jpg|webp|gif)$/.test(entry.name)) pin(join(entry.parentPath, entry.name));
  }
}

function editJson(path: string, edit: (json: any) => void): void {
  const json = JSON.parse(readFileSync(path, 'utf8'));
  edit(json);
  writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
}

/** The seed's actor 0000 and A3 (four images, no manifest yet). */
async function smallRoot(): Promise<string> {
  const root = await tempRoot();
  await seedActor0000(root);
  await addImages(root, A3, {
    [`${A3}_0.png`]: 1,
    [`${A3}_1.png`]: 10,
    [`${A3}_2.png`]: 5000,
    [`${A3}_3.png`]: 65_536,
  });
  backdate(root);
  return root;
}

/** Four actors: the seed's (response.json), A1 (varied sizes, prompt_metadata.json, a manifest), A2 (a response.json naming a missing image), A3. */
async function richRoot(): Promise<string> {
  const root = await smallRoot();
  await addImages(root, A1, {
    [`${A1}_0.png`]: 1,
    [`${A1}_1.png`]: 3000,
    [`${A1}_2.jpg`]: 70_000,
    [`${A1}_3.webp`]: 200_000,
  });
  const prompt = {
    images: { [`${A1}_0.png`]: { s3_url: url(A1, `${A1}_0.png`), good: true }, [`${A1}_1.png`]: { good: false } },
  };
  writeFileSync(join(trainingDir(root, A1), 'prompt_metadata.json'), JSON.stringify(prompt));
  await writeManifest(root, '0001', {
    character_id: '0001',
    character_name: A1,
    metadata: { age: '30', name: 'Zoë 李' },
  }); // non-ASCII: the cache hashes the bytes written
  await addImages(root, A2, { [`${A2}_0.png`]: 4096, [`${A2}_1.png`]: 4096 });
  await writeResponseJson(root, A2, [url(A2, `${A2}_0.png`), url(A2, `${A2}_7.png`)]);
  backdate(root);
  return root;
}

/** What must not depend on the cache: outcomes, statistics, problems, manifests (but the copy's inodes and commit times) and files. */
function outcome(report: SyncReport, root: string) {
  const summary = summarize('sync', report);
  const problems = (list: typeof summary.errors) =>
    list.map((p) => ({ ...p, file: p.file.split(root).join('<root>') }));
  return {
    actors: summary.actors,
    manifests: summary.manifests,
    legacy: summary.legacy,
    totals: summary.totals,
    errors: problems(summary.errors),
    warnings: problems(summary.warnings),
    perActor: report.actors.map((a) => ({
      name: a.name,
      manifest: a.manifest,
      legacy: a.legacy,
      statistics: a.statistics,
    })),
    // Serialized: byte-identical after normalising, key order included.
    onDisk: [...readManifests(manifestsDirOf(root))].map(
      ([name, manifest]) => `${name} ${JSON.stringify(comparable(manifest))}`,
    ),
    files: readdirSync(join(root, 'data', 'actors'), { recursive: true })
      .map(String)
      .sort(),
  };
}

describe('a run settled by the cache agrees with one that assesses every actor', () => {
  /** [what, the actor it changes, change, whether the cache still settles that actor]. Every written image gets a fixed mtime, so copies agree on it. */
  const mutations: [string, string, (root: string) => unknown, boolean?][] = [
    [
      'an image rewritten in place with other bytes of another size, its mtime restored',
      A1,
      (r) => {
        writeFileSync(image(r, A1, 2, 'jpg'), Buffer.alloc(12_345, 1));
        pin(image(r, A1, 2, 'jpg'));
      },
    ],
    [
      'an image rewritten in place with other bytes of the same size, a new mtime',
      A1,
      (r) => {
        writeFileSync(image(r, A1, 2, 'jpg'), Buffer.alloc(12_345, 4));
        pin(image(r, A1, 2, 'jpg'), T0 + 100);
      },
    ],
    // Same size, mtime and inode: the stat token cannot tell, so the full path reuses the old hash too (the
    // accepted limit of stat tokens, which --verify lifts) and the cache settles the actor.
    [
      'an image rewritten in place with other bytes of the same size, its mtime restored',
      A1,
      (r) => {
        const bytes = readFileSync(image(r, A1, 1));
        bytes[0] = bytes[0]! ^ 0xff;
        writeFileSync(image(r, A1, 1), bytes);
        pin(image(r, A1, 1));
      },
      true,
    ],
    // Its stat token unchanged too, but the manifest is now no older than it: only the racily-clean rule catches this.
    [
      'an image rewritten in place, its mtime restored, the manifest given the same mtime',
      A1,
      (r) => {
        const bytes = readFileSync(image(r, A1, 3, 'webp'));
        bytes[0] = bytes[0]! ^ 0xff;
        writeFileSync(image(r, A1, 3, 'webp'), bytes);
        pin(image(r, A1, 3, 'webp'));
        pin(manifestPath(r, '0001'));
      },
    ],
    [
      'an image replaced by a new file (a new inode) of the same size and mtime',
      A2,
      (r) => {
        const temp = `${image(r, A2, 0)}.new`;
        writeFileSync(temp, Buffer.alloc(4096, 2));
        pin(temp);
        renameSync(temp, image(r, A2, 0));
      },
    ],
    [
      'an image added',
      A2,
      (r) => {
        writeFileSync(image(r, A2, 5, 'gif'), Buffer.alloc(5000, 3));
        pin(image(r, A2, 5, 'gif'), T0 + 200);
      },
    ],
    ['an image deleted', SEED_NAME, (r) => unlinkSync(image(r, SEED_NAME, 8))],
    ['a response.json with a URL for an existing image', A2, (r) => writeResponseJson(r, A2, [url(A2, `${A2}_5.gif`)])],
    [
      'prompt_metadata.json given an s3_url',
      A1,
      (r) =>
        editJson(join(trainingDir(r, A1), 'prompt_metadata.json'), (p) => {
          p.images[`${A1}_3.webp`] = { s3_url: url(A1, `${A1}_3.webp`), good: true };
        }),
    ],
    [
      "a manifest entry's s3_url edited by hand to another valid URL",
      SEED_NAME,
      (r) =>
        editJson(manifestPath(r, '0000'), (m) => {
          m.training_data.find((e: any) => e.filename === `${SEED_NAME}_9.png`).s3_url =
            `https://other-bucket.s3.us-east-1.amazonaws.com/moved/${SEED_NAME}_9.png`;
        }),
    ],
    [
      "a manifest entry's status edited by hand",
      SEED_NAME,
      (r) =>
        editJson(manifestPath(r, '0000'), (m) => {
          m.training_data.find((e: any) => e.filename === `${SEED_NAME}_10.png`).status = 'out_of_sync';
        }),
    ],
    [
      'an unowned manifest field edited',
      A2,
      (r) =>
        editJson(manifestPath(r, '0002'), (m) => {
          m.metadata = { note: 'written by hand' };
        }),
    ],
    [
      'an image replaced by a symlink to another image inside the root',
      A1,
      (r) => {
        unlinkSync(image(r, A1, 0));
        symlinkSync(`../../${A3}/training_data/${A3}_2.png`, image(r, A1, 0));
      },
    ],
    [
      'an image given an mtime in the future (newer than the manifest: racily clean)',
      SEED_NAME,
      (r) => pin(image(r, SEED_NAME, 0), 4_102_444_800),
    ],
    ['a manifest made older than its images (all racily clean)', A2, (r) => pin(manifestPath(r, '0002'), T0 - 1000)],
    ['prompt_metadata.json deleted', A1, (r) => unlinkSync(join(trainingDir(r, A1), 'prompt_metadata.json'))],
    ['a manifest deleted', A2, (r) => unlinkSync(manifestPath(r, '0002'))],
  ];

  it('two copies, one with a persistent cache and one never hitting, end the same after each change', async () => {
    const base = await tempRoot();
    const pristine = await richRoot();
    const a = join(base, 'a');
    const b = join(base, 'b');
    cpSync(pristine, a, { recursive: true, preserveTimestamps: true });
    cpSync(pristine, b, { recursive: true, preserveTimestamps: true });
    const all = [SEED_NAME, A1, A2, A3];
    let fresh = 0;
    const both = async (what: string) => {
      const runA = await sync(a, join(base, 'cache-a'));
      const runB = await sync(b, join(base, `cache-b-${fresh++}`));
      expect(runB.assessed, what).toEqual(all);
      expect(
        runB.report.actors.flatMap((x) => x.errors),
        what,
      ).toEqual([]);
      expect(outcome(runA.report, a), what).toEqual(outcome(runB.report, b));
      return runA;
    };
    expect((await both('first run')).assessed).toEqual(all);
    expect((await both('nothing changed')).assessed).toEqual([]);
    for (const [what, actor, mutate, settles] of mutations) {
      const before = readFileSync(manifestPath(a, actor.slice(0, 4)), 'utf8');
      await mutate(a);
      await mutate(b);
      const runA = await both(what);
      expect(runA.assessed, what).not.toContain(A3);
      if (settles) {
        expect(runA.assessed, what).not.toContain(actor);
        expect(readFileSync(manifestPath(a, actor.slice(0, 4)), 'utf8'), what).toBe(before);
      } else expect(runA.assessed, what).toContain(actor);
    }
  });
});

describe('the cache file', () => {
  it('check --require-synced: an actor the cache finds entirely synced is settled; one that is not is assessed, for its entries', async () => {
    const root = await tempRoot();
    await seedActor0000(root); // 12 synced, 5 local_only
    const full = '0004_full';
    await addImages(root, full, { [`${full}_0.png`]: 10, [`${full}_1.png`]: 20 });
    await writeResponseJson(root, full, [url(full, `${full}_0.png`), url(full, `${full}_1.png`)]);
    backdate(root);
    const home = join(await tempRoot(), 'cache');
    await sync(root, home);
    await sync(root, home);
    const required = await sync(root, home, {}, (options) => plan(options, { entries: 'unsynced' }));
    expect(required.assessed).toEqual([SEED_NAME]);
    const seed = required.report.actors.find((a) => a.name === SEED_NAME)!;
    expect(seed.entries!.filter((e) => e.status !== 'synced').map((e) => e.status)).toEqual(
      Array(5).fill('local_only'),
    );
    expect(statsOf(required.report, full)).toMatchObject({ training_images_count: 2, training_synced_count: 2 });
  });

  it('--remote settles an actor only while S3 holds what the run that recorded it found: an object deleted or replaced is found by the next run', async () => {
    const root = await smallRoot();
    const home = join(await tempRoot(), 'cache');
    const server = await startS3Server([BUCKET]);
    const s3 = testS3(server.endpoint);
    const keyOf = (file: string) => `system_actors/training_data/${SEED_NAME}/${file}`;
    for (const file of SEED_LISTED)
      await putObject(s3, BUCKET, keyOf(file), readFileSync(join(trainingDir(root, SEED_NAME), file)));
    const remote = { remote: { endpoint: server.endpoint, forcePathStyle: true, credentials: TEST_CREDENTIALS } };
    const seedOf = (report: SyncReport) => statsOf(report, SEED_NAME);

    expect((await sync(root, home, remote)).assessed).toEqual([SEED_NAME, A3]);
    const settled = await sync(root, home, remote);
    expect(settled.assessed, 'nothing changed, locally or in S3').toEqual([]);
    expect(settled.report.s3Requests!.list).toBeGreaterThan(0);
    expect(seedOf(settled.report)).toMatchObject({ training_synced_count: 12, training_local_only_count: 5 });
    const verified = await sync(root, home, { ...remote, verify: true });
    expect(new Set(verified.assessed), '--verify rehashes every actor, at rest or not').toEqual(
      new Set([SEED_NAME, A3]),
    );
    expect(summarize('sync', verified.report)).toMatchObject({ hashes_reused: 0 });

    const [gone, replaced] = SEED_LISTED;
    await s3.run(() => s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: keyOf(gone!) })));
    const deleted = await sync(root, home, remote);
    expect(deleted.assessed).toEqual([SEED_NAME]);
    expect(seedOf(deleted.report)).toMatchObject({ training_synced_count: 11, training_local_only_count: 6 });
    expect(
      ((await readJson(manifestPath(root, '0000'))).training_data as any[]).find((e) => e.filename === gone),
    ).toMatchObject({ s3_exists: false, status: 'local_only' });
    expect((await sync(root, home, remote)).assessed, 'the absence is what the cache now records').toEqual([]);

    await putObject(s3, BUCKET, keyOf(replaced!), Buffer.from('other bytes'));
    const changed = await sync(root, home, remote);
    expect(new Set(changed.assessed), 'assessed, then again with what a HEAD says').toEqual(new Set([SEED_NAME]));
    expect(seedOf(changed.report)).toMatchObject({ training_synced_count: 10, training_out_of_sync_count: 1 });
    // An image out of sync is confirmed by a HEAD on every run (its ETag alone may hide an MD5): never settled.
    expect((await sync(root, home, remote)).assessed).toContain(SEED_NAME);
  });

  it('settles every actor of a second run, from the documented path; its statistics are what the report carries', async () => {
    const root = await smallRoot();
    const home = join(await tempRoot(), 'cache');
    const first = await sync(root, home);
    const path = join(home, 'actor-sync', `sync-cache-${md5(Buffer.from(realpathSync(manifestsDirOf(root))))}.json`);
    expect(cacheOf(root, home)).toBe(path);
    expect(existsSync(path)).toBe(true);

    starts = 0;
    const second = await sync(root, home);
    expect(second.assessed).toEqual([]);
    expect(starts, 'a run the cache will settle asks for no thread up front').toBe(0);
    const summary = summarize('sync', second.report);
    expect(summary.manifests).toEqual({ written: 0, created: 0, unchanged: 2, failed: 0 });
    expect(summary).toMatchObject({ files_hashed: 0, hashes_reused: 21, totals: { images: 21 } });
    expect(second.report.actors.map((a) => a.statistics)).toEqual(first.report.actors.map((a) => a.statistics));

    // Statistics only the cache holds show up in the report: it was read, and the actor not assessed.
    const valid = readFileSync(path, 'utf8');
    const tampered = JSON.parse(valid);
    tampered.actors[A3].statistics.training_images_count = 999;
    writeFileSync(path, JSON.stringify(tampered));
    expect(statsOf((await sync(root, home)).report, A3).training_images_count).toBe(999);
    writeFileSync(path, valid);
    expect(statsOf((await sync(root, home)).report, A3).training_images_count).toBe(4);

    // Any change to the actor: assessed again, the real statistics come back, and the cache holds them.
    writeFileSync(path, JSON.stringify(tampered));
    await addImages(root, A3, { [`${A3}_4.png`]: 100 });
    pin(image(root, A3, 4));
    const changed = await sync(root, home);
    expect(changed.assessed).toEqual([A3]);
    expect(statsOf(changed.report, A3).training_images_count).toBe(5);
    expect(readCache(path).get(A3)).toMatchObject({ images: 5, statistics: { training_images_count: 5 } });
  });

  const corruptions: [string, (valid: any) => string | Buffer, 'all' | 'one'][] = [
    ['garbage bytes', () => Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22, 0x0a]), 'all'],
    ['nothing at all', () => '', 'all'],
    ['a truncated document', (v) => JSON.stringify(v).slice(0, 60), 'all'],
    ['valid JSON of a wrong shape', () => '[{"version": 1}]', 'all'],
    ['actors of a wrong shape', (v) => JSON.stringify({ version: v.version, actors: [v.actors[A3]] }), 'all'],
    ['another version', (v) => JSON.stringify({ ...v, version: v.version + 1 }), 'all'],
    ['what another build of the tool wrote', (v) => JSON.stringify({ ...v, code: `${v.code}-other` }), 'all'],
    [
      'an entry whose fingerprint is not an MD5',
      (v) => JSON.stringify({ ...v, actors: { ...v.actors, [A3]: { ...v.actors[A3], fingerprint: 'nope' } } }),
      'all',
    ],
    [
      'an entry missing a statistic',
      (v) => {
        delete v.actors[A3].statistics.training_synced_count;
        return JSON.stringify(v);
      },
      'all',
    ],
    // Its fingerprint still right: only the fields beside it are wrong.
    [
      'an entry with a wrong manifest MD5 and made-up statistics',
      (v) => {
        v.actors[A3].manifestMd5 = md5(Buffer.from('another manifest'));
        v.actors[A3].statistics.training_images_count = 999;
        return JSON.stringify(v);
      },
      'one',
    ],
    [
      'an entry with a wrong fingerprint and made-up statistics',
      (v) => {
        v.actors[A3].fingerprint = '0'.repeat(32);
        v.actors[A3].statistics.training_images_count = 999;
        return JSON.stringify(v);
      },
      'one',
    ],
  ];
  it.each(corruptions)(
    'a cache holding %s changes no result and is valid again afterwards',
    async (_what, corrupt, miss) => {
      const root = await smallRoot();
      const home = join(await tempRoot(), 'cache');
      await sync(root, home);
      const path = cacheOf(root, home);
      const valid = readFileSync(path, 'utf8');
      const manifests = await snapshot(manifestsDirOf(root));
      writeFileSync(path, corrupt(JSON.parse(valid)));

      const run = await sync(root, home);
      expect(run.assessed).toEqual(miss === 'all' ? [SEED_NAME, A3] : [A3]);
      const uncached = await sync(root, join(await tempRoot(), 'empty-cache'));
      expect(outcome(run.report, root)).toEqual(outcome(uncached.report, root));
      expect(statsOf(run.report, A3).training_images_count).toBe(4);
      expect(await snapshot(manifestsDirOf(root))).toEqual(manifests);
      expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(JSON.parse(valid));
    },
  );

  it('--dry-run, check and status settle actors from it but neither create nor modify it', async () => {
    const root = await smallRoot();
    const home = join(await tempRoot(), 'cache');
    const cli = (command: string) =>
      runCli([command, '--root', root, '--workers', '2', '--json'], { XDG_CACHE_HOME: home });
    expect((await sync(root, home, { dryRun: true })).report.actors).toHaveLength(2);
    expect((await cli('check')).code).toBe(1);
    expect(existsSync(home)).toBe(false);

    await sync(root, home);
    await sync(root, home); // the seed's response.json is retired by the first
    const before = await snapshot(home);
    expect(before.size).toBe(1);
    // Nothing changed: every actor is settled, and each command answers as without a cache.
    const dry = await sync(root, home, { dryRun: true });
    expect(dry.assessed).toEqual([]);
    const uncached = await sync(root, join(await tempRoot(), 'empty-cache'), { dryRun: true });
    expect(outcome(dry.report, root)).toEqual(outcome(uncached.report, root));
    const check = await cli('check');
    expect(check.code, check.stderr).toBe(0);
    const status = await cli('status');
    expect(status.code).toBe(0);
    const withoutCache = await runCli(['status', '--root', root, '--workers', '2', '--json'], {
      XDG_CACHE_HOME: join(await tempRoot(), 'none'),
    });
    const counts = (stdout: string) => ({ totals: JSON.parse(stdout).totals, perActor: JSON.parse(stdout).per_actor });
    expect(counts(status.stdout)).toEqual(counts(withoutCache.stdout));
    expect(counts(status.stdout).perActor).toHaveLength(2);
    // --require-synced answers as without a cache (it assesses the actors not entirely synced, to name each image; the seed's local_only images fail it).
    const required = await runCli(['check', '--root', root, '--workers', '2', '--require-synced', '--json'], {
      XDG_CACHE_HOME: home,
    });
    const requiredWithoutCache = await runCli(
      ['check', '--root', root, '--workers', '2', '--require-synced', '--json'],
      { XDG_CACHE_HOME: join(await tempRoot(), 'none') },
    );
    expect(required.code).toBe(1);
    const verdict = (stdout: string) =>
      (({ ok, totals, manifests, differences }) => ({ ok, totals, manifests, differences }))(JSON.parse(stdout));
    expect(verdict(required.stdout)).toEqual(verdict(requiredWithoutCache.stdout));
    expect(required.stderr).toBe(requiredWithoutCache.stderr);

    await addImages(root, A3, { [`${A3}_4.png`]: 100 }); // what a sync would record
    expect((await sync(root, home, { dryRun: true })).assessed).toEqual([A3]);
    const changed = await cli('check');
    expect(changed.code).toBe(1);
    expect(changed.stdout).toContain(`${A3}_4.png`);
    expect(await snapshot(home)).toEqual(before);
    await sync(root, home);
    expect(await snapshot(home)).not.toEqual(before);
  });

  it('an unwritable location fails no run: one warning naming the cache path, manifests written', async () => {
    const root = await smallRoot();
    const notAFolder = join(await tempRoot(), 'a-file');
    writeFileSync(notAFolder, 'not a folder');
    const env = { XDG_CACHE_HOME: notAFolder };
    const path = cachePath(realpathSync(manifestsDirOf(root)), undefined, env);
    const result = await runCli(['sync', '--root', root, '--workers', '2'], env);
    expect(result.code, result.stderr).toBe(0);
    const warnings = result.stderr.split('\n').filter((line) => line.startsWith('warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(path);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect((await readJson(manifestPath(root, '0000'))).training_data).toHaveLength(17);
    expect((await readJson(manifestPath(root, '0003'))).statistics.training_images_count).toBe(4);
    expect(existsSync(join(trainingDir(root, SEED_NAME), 'response.json'))).toBe(false);

    const again = await runCli(['sync', '--root', root, '--workers', '2', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    const summary = JSON.parse(again.stdout);
    expect(summary.manifests).toMatchObject({ unchanged: 2, failed: 0 });
    expect(summary.warnings.map((w: any) => w.file)).toEqual([path]);
    expect(readFileSync(notAFolder, 'utf8')).toBe('not a folder');
  });

  it("removes its own stale temp file when it next writes, never another folder's or another shard's, nor a user's copy", async () => {
    const root = await smallRoot();
    const home = join(await tempRoot(), 'cache');
    await sync(root, home);
    const path = cacheOf(root, home);
    const folder = dirname(path);
    const stale = await leaveStaleTemp(folder, basename(path));
    const otherFolder = await leaveStaleTemp(folder, `sync-cache-${md5(Buffer.from('/elsewhere'))}.json`);
    const otherShard = await leaveStaleTemp(folder, basename(cacheOf(root, home, { index: 1, count: 2 })));
    const copy = `${path}.1`;
    writeFileSync(copy, '{"version": 1, "act');

    await addImages(root, A3, { [`${A3}_4.png`]: 100 }); // so that the run writes the cache
    pin(image(root, A3, 4));
    await sync(root, home);
    expect(readCache(path).get(A3)?.images).toBe(5);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(otherFolder)).toBe(true);
    expect(existsSync(otherShard)).toBe(true);
    expect(existsSync(copy)).toBe(true);
  });
});

describe("the build's identity", () => {
  it('follows the bytes of the worker entry, not its size or mtime: a packed install keeps one mtime, and an entry that names other chunks keeps its size', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'actor-sync-identity-'));
    try {
      const entry = join(dir, 'tasks.js');
      await writeFile(entry, 'import "../src/chunk-AAAAAAAA.js";\n');
      const first = codeIdentity(entry);
      await utimes(entry, new Date('1985-10-26T08:15:00Z'), new Date('1985-10-26T08:15:00Z'));
      expect(codeIdentity(entry)).toBe(first);
      await writeFile(entry, 'import "../src/chunk-BBBBBBBB.js";\n'); // the same size: another chunk
      await utimes(entry, new Date('1985-10-26T08:15:00Z'), new Date('1985-10-26T08:15:00Z'));
      expect(codeIdentity(entry)).not.toBe(first);
      expect(codeIdentity(join(dir, 'missing.js'))).toBeUndefined();
      expect(codeIdentity()).toMatch(/^[0-9a-f]{32}$/); // the real one, dist/workers/tasks.js
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('--verify', () => {
  it('is never answered from the cache: an actor the cache settles is assessed, every file rehashed, a change its stat token hides found', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    backdate(root);
    const home = join(await tempRoot(), 'cache');
    expect((await sync(root, home)).report.actors[0]).toMatchObject({
      legacy: 'retired',
      manifest: 'written',
      errors: [],
    });
    expect((await sync(root, home)).assessed, 'the cache settles the actor').toEqual([]);

    // Other bytes of the same size, its mtime restored, the same inode: only rehashing can tell.
    const changed = image(root, SEED_NAME, 0);
    const bytes = readFileSync(changed);
    bytes[0] = bytes[0]! ^ 0xff;
    writeFileSync(changed, bytes);
    pin(changed);
    expect((await sync(root, home)).assessed, 'without --verify, the cache still settles it').toEqual([]);

    const verified = await sync(root, home, { verify: true });
    expect(verified.assessed).toEqual([SEED_NAME]);
    expect(verified.report.actors[0]).toMatchObject({
      hashedFiles: 17,
      reusedFiles: 0,
      manifest: 'written',
      errors: [],
    });
    const entry = (await readJson(manifestPath(root, '0000'))).training_data.find(
      (e: { filename: string }) => e.filename === basename(changed),
    );
    expect(entry.md5_hash).toBe(md5(bytes));
  });
});

describe('what is recorded', () => {
  it('each shard keeps its own cache, apart from the whole-root one', async () => {
    const root = await tempRoot();
    const ids = Array.from({ length: 8 }, (_, i) => String(i).padStart(4, '0'));
    const names = ids.map((id) => `${id}_actor`);
    for (const name of names) await addImages(root, name, { [`${name}_0.png`]: 700, [`${name}_1.png`]: 900 });
    backdate(root);
    const home = join(await tempRoot(), 'cache');
    const shards: Shard[] = [
      { index: 1, count: 2 },
      { index: 2, count: 2 },
    ];
    const inShard = (shard: Shard) => names.filter((name) => shardOf(name.slice(0, 4), 2) === shard.index);
    expect(shards.map((s) => inShard(s).length).every((n) => n > 0)).toBe(true);

    for (const shard of shards) {
      expect((await sync(root, home, { shard })).assessed).toEqual(inShard(shard));
      expect((await sync(root, home, { shard })).assessed).toEqual([]);
    }
    expect((await sync(root, home)).assessed).toEqual(names); // neither shard's cache serves a whole-root run
    expect((await sync(root, home)).assessed).toEqual([]);

    const paths = [...shards, undefined].map((shard) => cacheOf(root, home, shard));
    expect(new Set(paths).size).toBe(3);
    expect(readdirSync(join(home, 'actor-sync')).sort()).toEqual(paths.map((p) => basename(p)).sort());
    expect(paths.map((p) => [...readCache(p).keys()])).toEqual([inShard(shards[0]!), inShard(shards[1]!), names]);

    // The CLI's --shard names the same file: its run is settled whole and adds no file.
    const cli = await runCli(['sync', '--root', root, '--shard', '2/2', '--workers', '2', '--json'], {
      XDG_CACHE_HOME: home,
    });
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({
      files_hashed: 0,
      hashes_reused: 2 * inShard(shards[1]!).length,
      manifests: { unchanged: inShard(shards[1]!).length },
    });
    expect(readdirSync(join(home, 'actor-sync'))).toHaveLength(3);
  });

  it('an actor whose response.json the run retires is recorded; with --keep-legacy it is not', async () => {
    const root = await smallRoot();
    const kept = join(await tempRoot(), 'kept');
    cpSync(root, kept, { recursive: true, preserveTimestamps: true });
    const home = join(await tempRoot(), 'cache');

    const retiring = await sync(root, home);
    expect(retiring.report.actors.find((a) => a.name === SEED_NAME)).toMatchObject({
      legacy: 'retired',
      manifest: 'written',
      errors: [],
    });
    expect([...readCache(cacheOf(root, home)).keys()]).toEqual([SEED_NAME, A3]);
    expect((await sync(root, home)).assessed).toEqual([]);

    const keeping = await sync(kept, home, { keepLegacy: true });
    expect(keeping.report.actors.find((a) => a.name === SEED_NAME)).toMatchObject({ legacy: 'kept', errors: [] });
    expect([...readCache(cacheOf(kept, home)).keys()]).toEqual([A3]);
    expect((await sync(kept, home, { keepLegacy: true })).assessed).toEqual([SEED_NAME]);
  });

  it("an actor settled before another actor's training_data was linked to its folder is not settled: both fail", async () => {
    const root = await smallRoot();
    const home = join(await tempRoot(), 'cache');
    await sync(root, home);
    expect(readCache(cacheOf(root, home)).has(A3)).toBe(true);
    mkdirSync(join(root, 'data', 'actors', '0009_twin'));
    symlinkSync(trainingDir(root, A3), trainingDir(root, '0009_twin'));
    const second = await sync(root, home);
    const failed = second.report.actors.filter((a) => a.errors.length > 0).map((a) => [a.name, a.manifest]);
    expect(failed).toEqual([
      [A3, 'failed'],
      ['0009_twin', 'failed'],
    ]);
    expect(readCache(cacheOf(root, home)).has(A3), 'no longer recorded as at rest').toBe(false);
  });

  it('an actor without a training_data folder (only S3 copies) is settled like any other', async () => {
    const root = await smallRoot();
    const name = '0005_delta';
    mkdirSync(join(root, 'data', 'actors', name));
    await writeManifest(root, '0005', {
      character_id: '0005',
      training_data: [{ filename: `${name}_0.png`, s3_url: url(name, `${name}_0.png`) }],
    });
    const home = join(await tempRoot(), 'cache');
    const first = await sync(root, home);
    expect(statsOf(first.report, name)).toMatchObject({ training_images_count: 1, training_s3_only_count: 1 });
    expect(readCache(cacheOf(root, home)).get(name)).toMatchObject({ images: 0 });
    const second = await sync(root, home);
    expect(second.assessed).toEqual([]);
    expect(statsOf(second.report, name)).toMatchObject({ training_images_count: 1, training_s3_only_count: 1 });
  });

  it('a manifest changed since the cache was written (a chmod) has the next run write it again, so it reads as fresh', async () => {
    const root = await smallRoot();
    const home = join(await tempRoot(), 'cache');
    await sync(root, home);
    const path = cacheOf(root, home);
    const manifests = manifestsDirOf(root);
    expect(newerThanManifests(path, manifests)).toBe(true);
    // ctime moves with any change to the file, a chmod included, and no copy can set it back.
    chmodSync(join(manifests, '0003_manifest.json'), 0o600);
    expect(newerThanManifests(path, manifests)).toBe(false);
    const settled = await sync(root, home); // settles both actors: the entries do not change
    expect(settled.assessed).toEqual([]);
    expect(newerThanManifests(path, manifests)).toBe(true);
  });
});
