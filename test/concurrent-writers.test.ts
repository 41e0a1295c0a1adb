/**
 * Another program writing while a run works (the run's lock binds only actor-sync): what it wrote between
 * the worker's read of an actor and the commit or retirement is never overwritten or deleted, and no URL is
 * lost. Real files, real worker threads; the other program writes at a set moment, just after the worker
 * has read the actor, by a pool that passes every task to the real one.
 */
import fs, { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AssessTask } from '../workers/assess.js';
import { createPool, type WorkerPool } from '../src/engine/pool.js';
import { RETIRING_NAME } from '../src/engine/retire.js';
import { runSync } from '../src/engine/sync.js';
import { manifestsDirOf } from './helpers/cli.js';
import {
  addImages,
  manifestPath,
  readJson,
  tempRoot,
  trainingDir,
  writeManifest,
  writeResponseJson,
} from './helpers/root.js';

const NAME = '0007_race';
const url = (file: string) =>
  `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${NAME}/${file}`;

const originalOpen = fs.open;
let real: WorkerPool;
beforeAll(() => {
  real = createPool(1);
});
afterAll(() => real.destroy());
afterEach(() => vi.restoreAllMocks());

/** A pool whose `assess` runs `meanwhile` once the real worker has read and assessed the actor. */
function poolWriting(meanwhile: () => void): WorkerPool {
  return {
    get threads() {
      return real.threads;
    },
    assess: async (task: AssessTask) => {
      const assessment = await real.assess(task);
      meanwhile();
      return assessment;
    },
    urls: (task) => real.urls(task),
    hash: (task) => real.hash(task),
    start: () => real.start(),
    destroy: async () => undefined,
  };
}

/** An actor with two images and a response.json naming the first; `manifest`: write one first. */
async function raceRoot(manifest: boolean): Promise<{ root: string; manifest: string; response: string }> {
  const root = await tempRoot();
  await addImages(root, NAME, { [`${NAME}_1.png`]: 100, [`${NAME}_2.png`]: 200 });
  const response = await writeResponseJson(root, NAME, [url(`${NAME}_1.png`)]);
  if (manifest) await writeManifest(root, '0007', { character_id: '0007', character_name: NAME });
  return { root, manifest: manifestPath(root, '0007'), response };
}

describe('another program writing during a run', () => {
  it('a manifest changed after the worker read it is not overwritten; the actor fails naming it, response.json kept', async () => {
    const at = await raceRoot(true);
    const theirs = `${JSON.stringify({ character_id: '0007', scene_images: [{ s3_url: url('scene.png') }] }, null, 2)}\n`;
    const report = await runSync({ root: at.root, pool: poolWriting(() => writeFileSync(at.manifest, theirs)) });
    const actor = report.actors[0]!;
    expect(actor.manifest).toBe('failed');
    expect(actor.errors).toEqual([
      {
        actor: NAME,
        file: at.manifest,
        reason:
          'changed while this run assessed the actor (another program?); not written; run again (response.json kept)',
      },
    ]);
    expect(readFileSync(at.manifest, 'utf8')).toBe(theirs);
    expect(existsSync(at.response)).toBe(true);

    // The next run assesses what the other program wrote: its fields are kept, the URLs taken over.
    const again = await runSync({ root: at.root, pool: poolWriting(() => undefined) });
    expect(again.actors[0]).toMatchObject({ manifest: 'written', legacy: 'retired' });
    const manifest = await readJson(at.manifest);
    expect(manifest.scene_images).toEqual([{ s3_url: url('scene.png') }]);
    expect(manifest.training_data.map((e: { s3_url: string | null }) => e.s3_url)).toEqual([
      url(`${NAME}_1.png`),
      null,
    ]);
  });

  it('a manifest another program created meanwhile is not replaced', async () => {
    const at = await raceRoot(false);
    const theirs = `${JSON.stringify({ character_id: '0007', made_by: 'another tool' })}\n`;
    const report = await runSync({ root: at.root, pool: poolWriting(() => writeFileSync(at.manifest, theirs)) });
    expect(report.actors[0]!.errors[0]!.reason).toBe(
      'appeared while this run assessed the actor (another program?); not written; run again (response.json kept)',
    );
    expect(readFileSync(at.manifest, 'utf8')).toBe(theirs);
    expect(existsSync(at.response)).toBe(true);
  });

  it('a response.json rewritten with a new URL after the worker read it is kept, with that URL, and taken over next run', async () => {
    const at = await raceRoot(true);
    const newer = [url(`${NAME}_1.png`), url(`${NAME}_2.png`)];
    // Replaced as a training job would: a new file renamed over the old one.
    const rewrite = () => {
      writeFileSync(`${at.response}.new`, JSON.stringify({ output: { output: { s3_image_urls: newer } } }));
      renameSync(`${at.response}.new`, at.response);
    };
    const report = await runSync({ root: at.root, pool: poolWriting(rewrite) });
    const actor = report.actors[0]!;
    expect(actor.manifest).toBe('written'); // the manifest holds the URL the worker read
    expect(actor.legacy).toBe('failed');
    expect(actor.errors).toEqual([
      {
        actor: NAME,
        file: at.response,
        reason: `not retired: ${at.response} changed while this run worked (it may name new URLs); kept, run again`,
      },
    ]);
    expect((await readJson(at.response)).output.output.s3_image_urls).toEqual(newer);
    expect(existsSync(join(trainingDir(at.root, NAME), RETIRING_NAME))).toBe(false);

    const again = await runSync({ root: at.root, pool: poolWriting(() => undefined) });
    expect(again.actors[0]).toMatchObject({ manifest: 'written', legacy: 'retired' });
    expect((await readJson(at.manifest)).training_data.map((e: { s3_url: string }) => e.s3_url)).toEqual(newer);
    expect(existsSync(at.response)).toBe(false);
  });

  it('a manifest changed by another program before response.json is retired: response.json kept', async () => {
    const at = await raceRoot(true);
    await runSync({ root: at.root, keepLegacy: true, pool: poolWriting(() => undefined) }); // the manifest holds the URL now
    const theirs = `${JSON.stringify({ character_id: '0007', training_data: [] })}\n`; // it drops every entry
    const report = await runSync({ root: at.root, pool: poolWriting(() => writeFileSync(at.manifest, theirs)) });
    expect(report.actors[0]).toMatchObject({ manifest: 'unchanged', legacy: 'failed' });
    expect(report.actors[0]!.errors[0]!.reason).toBe(
      `not retired: ${at.manifest} changed while this run worked (another program?); kept, run again`,
    );
    expect(existsSync(at.response)).toBe(true);
  });

  it('a response.json a stopped run left aside is read as the actor’s legacy file, beside a new one, and both retired', async () => {
    const at = await raceRoot(true);
    const aside = join(trainingDir(at.root, NAME), RETIRING_NAME);
    renameSync(at.response, aside); // as a run stopped between moving it aside and deleting it leaves it
    await writeResponseJson(at.root, NAME, [url(`${NAME}_2.png`)]); // and a training job wrote a new one since
    const report = await runSync({ root: at.root, pool: poolWriting(() => undefined) });
    expect(report.actors[0]).toMatchObject({ manifest: 'written', legacy: 'retired', errors: [] });
    expect((await readJson(at.manifest)).training_data.map((e: { s3_url: string }) => e.s3_url)).toEqual([
      url(`${NAME}_1.png`),
      url(`${NAME}_2.png`),
    ]);
    expect(existsSync(aside)).toBe(false);
    expect(existsSync(at.response)).toBe(false);
  });

  it('a response.json left aside and a new one that give one image different URLs: the actor fails, naming the one left aside; both kept', async () => {
    const at = await raceRoot(true);
    const aside = join(trainingDir(at.root, NAME), RETIRING_NAME);
    renameSync(at.response, aside);
    const other = url(`${NAME}_1.png`).replace('system_actors', 'other_actors');
    await writeResponseJson(at.root, NAME, [other]);
    const report = await runSync({ root: at.root, pool: poolWriting(() => undefined) });
    expect(report.actors[0]!.manifest).toBe('failed');
    expect(report.actors[0]!.errors[0]!.file).toBe(aside);
    expect(report.actors[0]!.errors[0]!.reason).toContain(`two different URLs have the filename "${NAME}_1.png"`);
    expect(report.actors[0]!.errors[0]!.reason).toContain(other);
    expect(existsSync(aside) && existsSync(at.response)).toBe(true);
  });

  it('a manifest with nothing to write is synced to disk, file and folder, before its response.json is retired; failing that, kept', async () => {
    const at = await raceRoot(true);
    // As another program leaves it: the URL held, the file never synced by this tool.
    await runSync({ root: at.root, keepLegacy: true, pool: poolWriting(() => undefined) });
    const open = vi.spyOn(fs, 'open').mockImplementation(((...args: unknown[]) => {
      const callback = args.at(-1) as (error: Error | null) => void;
      if (args[0] === at.manifest)
        return void process.nextTick(callback, Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
      return Reflect.apply(originalOpen, fs, args);
    }) as never);
    const failing = await runSync({ root: at.root, pool: poolWriting(() => undefined) });
    expect(failing.actors[0]).toMatchObject({ manifest: 'unchanged', legacy: 'failed' });
    expect(failing.actors[0]!.errors[0]!.reason).toBe('not retired: the manifest could not be synced to disk; kept');
    expect(existsSync(at.response)).toBe(true);
    expect(open.mock.calls.some((call) => call[0] === at.manifest)).toBe(true);

    open.mockRestore();
    const opened = vi.spyOn(fs, 'open');
    const report = await runSync({ root: at.root, pool: poolWriting(() => undefined) });
    expect(report.actors[0]).toMatchObject({ manifest: 'unchanged', legacy: 'retired' });
    expect(opened.mock.calls.map((call) => call[0])).toEqual(
      expect.arrayContaining([at.manifest, manifestsDirOf(at.root)]),
    );
    expect(existsSync(at.response)).toBe(false);
  });
});
