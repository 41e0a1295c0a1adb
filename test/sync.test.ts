/** `sync` end to end through the engine: real files in temp dirs, real worker threads. */
import { chmodSync, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AssessTask } from '../workers/assess.js';
import { createPool } from '../src/engine/pool.js';
import { runSync, type SyncOptions } from '../src/engine/sync.js';
import {
  addImages,
  leaveStaleTemp,
  manifestPath,
  readJson,
  SEED_NAME,
  SEED_URLS,
  seedActor0000,
  snapshot,
  tempRoot,
  trainingDir,
  writeManifest,
  writeResponseJson,
} from './helpers/root.js';

const sync = (root: string, extra: Partial<SyncOptions> = {}) => runSync({ root, workers: 2, ...extra });

describe('a manifest sync will not replace', () => {
  it('read-only, with no response.json: the actor fails, and no legacy file is counted or said to be kept', async () => {
    const root = await tempRoot();
    await addImages(root, '0007_ro', { 'a.png': 100 });
    const path = await writeManifest(root, '0007', { character_id: '0007' });
    chmodSync(path, 0o444);
    const report = await sync(root);
    const actor = report.actors[0]!;
    expect(actor.legacy).toBe('none');
    expect(actor.errors).toEqual([
      {
        actor: '0007_ro',
        file: path,
        reason: 'is read-only, so sync will not replace it; left unchanged (make it writable to let sync update it)',
      },
    ]);
  });
});

describe('the seed example (actor 0000)', () => {
  it('ends with 17 entries, 12 synced and 5 local_only, response.json retired, other fields kept', async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const report = await sync(root);
    expect(report.actors[0]!.errors).toEqual([]);

    const manifest = await readJson(seed.manifest);
    const entries = manifest.training_data as any[];
    expect(entries).toHaveLength(17);
    expect(entries.filter((e) => e.status === 'synced')).toHaveLength(12);
    expect(entries.filter((e) => e.status === 'local_only').map((e) => e.filename)).toEqual(
      [0, 1, 2, 3]
        .map((i) => `${SEED_NAME}_${i}.png`)
        .concat(`${SEED_NAME}_4.jpg`)
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true })),
    );
    expect(entries.map((e) => e.filename).slice(0, 6)).toEqual(
      ['_0.png', '_1.png', '_2.png', '_3.png', '_4.jpg', '_4.png'].map((s) => SEED_NAME + s),
    );
    expect(new Set(entries.map((e) => e.s3_url).filter(Boolean))).toEqual(new Set(SEED_URLS));
    for (const entry of entries) {
      expect(entry.md5_hash).toBe(seed.hashes[entry.filename]);
      expect(entry.local_path).toBe(`data/actors/${SEED_NAME}/training_data/${entry.filename}`);
    }
    const jpg4 = entries.find((e) => e.filename === `${SEED_NAME}_4.jpg`);
    expect(jpg4.duplicate_of).toBe(`${SEED_NAME}_4.png`);
    expect(manifest.metadata).toEqual({ age: '16' });
    expect(manifest.statistics).toMatchObject({
      total_files: 3,
      training_images_count: 17,
      training_synced_count: 12,
      training_local_only_count: 5,
    });
    expect(Object.keys(manifest)).toEqual([
      'character_id',
      'character_name',
      'metadata',
      'statistics',
      'training_data',
      'training_data_updated',
    ]);
    // Spliced into the file as written: 2-space indentation, and its end (the seed's has no final newline) kept.
    expect(await readFile(seed.manifest, 'utf8')).toMatch(
      /^\{\n {2}"character_id"[\s\S]*\n {4}"training_images_count": 17,[\s\S]*\}$/,
    );
    expect(existsSync(seed.response)).toBe(false);
    expect(report.actors[0]).toMatchObject({ manifest: 'written', legacy: 'retired', hashedFiles: 17 });
  });

  it('a second run rewrites nothing and hashes no unchanged file', async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    await sync(root);
    const before = await snapshot(root);
    const again = await sync(root);
    expect(await snapshot(root)).toEqual(before);
    expect(again.actors[0]).toMatchObject({ manifest: 'unchanged', legacy: 'none', hashedFiles: 0, reusedFiles: 17 });
    expect(existsSync(seed.manifest)).toBe(true);
  });

  it('--keep-legacy keeps response.json; --verify rehashes every file', async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const first = await sync(root, { keepLegacy: true });
    expect(first.actors[0]!.legacy).toBe('kept');
    expect(existsSync(seed.response)).toBe(true);
    const verified = await sync(root, { verify: true, keepLegacy: true });
    expect(verified.actors[0]).toMatchObject({ hashedFiles: 17, reusedFiles: 0, manifest: 'unchanged' });
  });
});

describe('temp files in the manifests folder (SPEC §3, invariant 1)', () => {
  it("a user's dated backup and notes.json.1 survive a sync byte for byte; only a temp file this tool left before the run's lock goes", async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const manifests = dirname(seed.manifest);
    const mine = {
      '0001_manifest.json.20251017': '{"character_id": "0001", "training_data": []}\n',
      'notes.json.1': 'kept by hand\n',
    };
    for (const [name, text] of Object.entries(mine)) await writeFile(join(manifests, name), text);
    const stale = await leaveStaleTemp(manifests, '0000_manifest.json');
    // Named as this tool names them, but written after the run takes its lock: a commit in flight, not a leftover.
    const inFlight = join(manifests, '.actor-sync-4243-0123456789ab.0000_manifest.json.tmp');
    await writeFile(inFlight, '{');
    const hourAhead = new Date(Date.now() + 3_600_000);
    await utimes(inFlight, hourAhead, hourAhead);

    const report = await sync(root);

    expect(report.actors[0]!.errors).toEqual([]);
    for (const [name, text] of Object.entries(mine))
      expect(await readFile(join(manifests, name), 'utf8'), name).toBe(text);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(inFlight)).toBe(true);
    expect((await readdir(manifests)).sort()).toEqual(
      ['.actor-sync-4243-0123456789ab.0000_manifest.json.tmp', '0000_manifest.json', ...Object.keys(mine)].sort(),
    );
  });
});

describe('changes between runs', () => {
  it('an edited synced image turns out_of_sync; a deleted one turns s3_only; a new one appears local_only', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await sync(root);
    const dir = trainingDir(root, SEED_NAME);
    await writeFile(join(dir, `${SEED_NAME}_6.png`), 'edited');
    execFileSync('rm', [join(dir, `${SEED_NAME}_8.png`)]);
    await addImages(root, SEED_NAME, { [`${SEED_NAME}_18.png`]: 100 });
    const report = await sync(root);
    expect(report.actors[0]!.hashedFiles).toBe(2);
    const entries = (await readJson(manifestPath(root, '0000'))).training_data as any[];
    const status = (n: number, ext = 'png') => entries.find((e) => e.filename === `${SEED_NAME}_${n}.${ext}`)?.status;
    expect([status(6), status(8), status(18)]).toEqual(['out_of_sync', 's3_only', 'local_only']);
    expect(entries.find((e) => e.filename === `${SEED_NAME}_8.png`)).toMatchObject({
      md5_hash: null,
      local_path: null,
      size_bytes: null,
    });
  });

  it('a file touched in the same instant as the manifest write (racily clean) is rehashed next run', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await sync(root);
    const file = join(trainingDir(root, SEED_NAME), `${SEED_NAME}_9.png`);
    const original = await readFile(file);
    // Same size, and an mtime equal to the manifest's: only the racily-clean rule catches this edit
    // if the inode and size also match, so rewrite in place.
    const changed = Buffer.from(original);
    changed[0] = changed[0]! ^ 0xff;
    await writeFile(file, changed);
    const entry = ((await readJson(manifestPath(root, '0000'))).training_data as any[]).find(
      (e) => e.filename === `${SEED_NAME}_9.png`,
    );
    const recorded = BigInt(entry.mtime_ns);
    // touch keeps every nanosecond (utimes takes a double and rounds them).
    const stamp = `@${recorded / 1_000_000_000n}.${String(recorded % 1_000_000_000n).padStart(9, '0')}`;
    execFileSync('touch', ['-m', '-d', stamp, file]);
    expect((await stat(file, { bigint: true })).mtimeNs).toBe(recorded);
    // The manifest written in the same tick as the file's mtime: the entry is racily clean.
    execFileSync('touch', ['-m', '-d', stamp, manifestPath(root, '0000')]);
    await sync(root);
    const after = ((await readJson(manifestPath(root, '0000'))).training_data as any[]).find(
      (e) => e.filename === `${SEED_NAME}_9.png`,
    );
    expect(after.status).toBe('out_of_sync');
  });
});

describe('a bad input fails its actor only, names the file, and changes nothing of it', () => {
  async function twoActors() {
    const root = await tempRoot();
    await addImages(root, '0001_bad', { '0001_bad_0.png': 1000, '0001_bad_1.png': 1000 });
    await writeManifest(root, '0001', { character_id: '0001', keep: true });
    const response = await writeResponseJson(root, '0001_bad', ['https://b.s3.amazonaws.com/x/0001_bad_0.png']);
    await addImages(root, '0002_good', { '0002_good_0.png': 1000 });
    return { root, response, manifest: manifestPath(root, '0001') };
  }

  const cases: [string, (ctx: Awaited<ReturnType<typeof twoActors>>) => Promise<string>, RegExp][] = [
    [
      'invalid JSON in response.json',
      async (c) => (await writeFile(c.response, '{"output": '), c.response),
      /invalid JSON/,
    ],
    [
      's3_image_urls not a list',
      async (c) => (await writeResponseJson(c.root, '0001_bad', { a: 1 }), c.response),
      /s3_image_urls is not a list/,
    ],
    [
      'a URL whose filename climbs out',
      async (c) => (
        await writeResponseJson(c.root, '0001_bad', ['https://b.s3.amazonaws.com/x/..%2F..%2Fetc%2Fpasswd']), c.response
      ),
      /unsafe/,
    ],
    [
      'a URL with a .. segment',
      async (c) => (
        await writeResponseJson(c.root, '0001_bad', ['https://b.s3.amazonaws.com/x/../0001_bad_0.png']), c.response
      ),
      /\.\./,
    ],
    [
      'a manifest that is an array',
      async (c) => (await writeFile(c.manifest, '[1, 2]\n'), c.manifest),
      /top level is not an object/,
    ],
    [
      'a manifest whose training_data is not a list',
      async (c) => (await writeFile(c.manifest, '{"training_data": 5}\n'), c.manifest),
      /training_data is not a list/,
    ],
  ];

  for (const [name, breakIt, reason] of cases) {
    it(name, async () => {
      const c = await twoActors();
      const file = await breakIt(c);
      const manifestBefore = await readFile(c.manifest);
      const responseBefore = await readFile(c.response);
      const report = await sync(c.root);
      const bad = report.actors.find((a) => a.id === '0001')!;
      expect(bad.manifest).toBe('failed');
      expect(bad.errors).toHaveLength(1);
      expect(bad.errors[0]!.file).toBe(file);
      expect(bad.errors[0]!.reason).toMatch(reason);
      expect(bad.errors[0]!.reason).toMatch(/left unchanged/);
      expect(await readFile(c.manifest)).toEqual(manifestBefore);
      expect(await readFile(c.response)).toEqual(responseBefore);
      const good = report.actors.find((a) => a.id === '0002')!;
      expect(good).toMatchObject({ manifest: 'created', errors: [] });
      expect((await readJson(manifestPath(c.root, '0002'))).training_data).toHaveLength(1);
    });
  }
});

describe('hostile files in training_data', () => {
  it('skips FIFOs, folders and symlinks out of the root; hashes zero-byte, spaced, non-ASCII and upper-case names', async () => {
    const root = await tempRoot();
    const name = '0003_odd';
    const hashes = await addImages(root, name, {
      'with space.png': 10,
      'émigré_ü.JPG': 20,
      'zero.webp': Buffer.alloc(0),
      'UPPER.PNG': 30,
      'notes.txt': 5,
      '.hidden.png': 5,
      '._x.jpg': 5,
    });
    const dir = trainingDir(root, name);
    execFileSync('mkfifo', [join(dir, 'fifo.png')]);
    await mkdir(join(dir, 'folder.jpg'));
    const outside = join(root, '..', `${root.split('/').pop()}-outside.png`);
    await writeFile(outside, 'secret');
    await symlink(outside, join(dir, 'escape.png'));
    await symlink(join(dir, 'UPPER.PNG'), join(dir, 'inside-link.png'));
    await writeFile(join(dir, 'prompt_metadata.json'), '{"images": {}}');

    const report = await sync(root);
    execFileSync('rm', ['-f', outside]);
    const actor = report.actors[0]!;
    expect(actor.errors).toEqual([]);
    const entries = (await readJson(manifestPath(root, '0003'))).training_data as any[];
    expect(entries.map((e) => e.filename).sort()).toEqual(
      ['UPPER.PNG', 'émigré_ü.JPG', 'inside-link.png', 'with space.png', 'zero.webp'].sort(),
    );
    expect(entries.find((e) => e.filename === 'zero.webp')).toMatchObject({
      size_bytes: 0,
      md5_hash: 'd41d8cd98f00b204e9800998ecf8427e',
      status: 'local_only',
    });
    expect(entries.find((e) => e.filename === 'inside-link.png').md5_hash).toBe(hashes['UPPER.PNG']);
    const warned = actor.warnings.map((w) => `${w.file.split('/').pop()}: ${w.reason}`);
    expect(warned).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^fifo\.png: not a regular file/),
        expect.stringMatching(/^folder\.jpg: not a regular file/),
        expect.stringMatching(/^escape\.png: a symlink leading out of the actors folder/),
        expect.stringMatching(/^zero\.webp: a zero-byte image/),
      ]),
    );
  });
});

describe('legacy URLs whose filename is not an image name', () => {
  it('are reported, not recorded as entries, and keep their response.json (no URL is lost)', async () => {
    const root = await tempRoot();
    const name = '0001_urls';
    const base = `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${name}`;
    await addImages(root, name, { 'a.png': 100 });
    const others = [`${base}/response.json`, `${base}/notes.txt`, `${base}/.hidden.png`];
    const response = await writeResponseJson(root, name, [`${base}/a.png`, ...others]);
    const prompt = join(trainingDir(root, name), 'prompt_metadata.json');
    await writeFile(prompt, JSON.stringify({ images: { 'b.json': { s3_url: `${base}/b.json` } } }));
    const report = await sync(root);
    const actor = report.actors[0]!;
    for (const url of others)
      expect(actor.warnings).toContainEqual(
        expect.objectContaining({
          file: response,
          reason: expect.stringMatching(
            new RegExp(`names ${url.replaceAll('.', '\\.')}, whose filename .* is not an image name`),
          ),
        }),
      );
    expect(actor.warnings).toContainEqual(
      expect.objectContaining({ file: prompt, reason: expect.stringMatching(/b\.json.* is not an image name/) }),
    );
    expect((await readJson(manifestPath(root, '0001'))).training_data.map((e: any) => [e.filename, e.s3_url])).toEqual([
      ['a.png', `${base}/a.png`],
    ]);
    expect(existsSync(response)).toBe(true);
    expect(actor.legacy).toBe('failed');
    expect(actor.errors).toEqual([
      expect.objectContaining({
        file: response,
        reason: expect.stringMatching(/not retired: the manifest does not hold 3 of its URLs/),
      }),
    ]);
  });
});

describe('--dry-run', () => {
  it('changes no byte under the root but reports what it would do', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await addImages(root, '0005_new', { 'a.png': 10 });
    const before = await snapshot(root, { folders: true });
    const report = await sync(root, { dryRun: true });
    expect(await snapshot(root, { folders: true }), 'no trace, not even a lock made and removed').toEqual(before);
    expect(report.actors.map((a) => [a.id, a.manifest, a.legacy])).toEqual([
      ['0000', 'written', 'retired'],
      ['0005', 'created', 'none'],
    ]);
    expect(report.actors[0]!.statistics).toMatchObject({ training_synced_count: 12, training_local_only_count: 5 });
  });
});

describe('actor selection', () => {
  it('--actor accepts 0, 0000 or the full name and leaves other actors alone', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await addImages(root, '0007_other', { 'a.png': 10 });
    for (const selector of ['0', '0000', SEED_NAME]) {
      const report = await sync(root, { actors: [selector], dryRun: true });
      expect(report.actors.map((a) => a.id)).toEqual(['0000']);
    }
    await sync(root, { actors: ['7'] });
    expect(existsSync(manifestPath(root, '0007'))).toBe(true);
    expect((await readJson(manifestPath(root, '0000'))).training_data).toBeUndefined();
  });
});

describe('an assessment that waits on a HEAD this run cannot send', () => {
  it('fails its actor with the reason, never passes for a blank report', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const pool = createPool(1);
    // The real assessment, as a worker returns it when listed ETags need a HEAD (only a remote check sends one).
    const waiting = {
      ...pool,
      threads: pool.threads,
      assess: async (task: AssessTask) => ({ ...(await pool.assess(task)), confirm: [SEED_URLS[0]!] }),
    };
    try {
      const report = await sync(root, { pool: waiting });
      const actor = report.actors[0]!;
      expect(actor.manifest).toBe('failed');
      expect(actor.errors.map((e) => e.reason)).toEqual([
        'could not be processed (1 of its images need a HEAD of their object to be confirmed, and this run checks no remote); left unchanged',
      ]);
    } finally {
      await pool.destroy();
    }
  });
});
