/**
 * No URL lost when a write fails inside a real `sync` (SPEC §3, invariants 1 and 2): faults injected into the
 * engine's own calls to `node:fs` (the writer reaches it through the callback API, the retirement through
 * `node:fs/promises`) while it runs over real files with a real worker thread. Whatever fails, every
 * manifest and `response.json` is byte-identical, or the `response.json` is gone only once a folder fsync
 * that started after its manifest's rename had succeeded. test/manifest/commit.test.ts tests the writer alone.
 */
import fs, { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPool, type WorkerPool } from '../src/engine/pool.js';
import { RETIRING_NAME } from '../src/engine/retire.js';
import { acquireRunLock } from '../src/lock/run-lock.js';
import { apply, runSync, type SyncReport } from '../src/engine/sync.js';
import { addImages, manifestPath, tempRoot, trainingDir, writeManifest, writeResponseJson } from './helpers/root.js';

const BASE = 'https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data';

let pool: WorkerPool;
beforeAll(() => {
  pool = createPool(1);
});
afterAll(() => pool.destroy());
afterEach(() => {
  vi.restoreAllMocks();
  syncBuiltinESMExports();
});

interface Actor {
  name: string;
  id: string;
  manifest: string;
  response: string;
  /** The URLs its response.json names: one of an image on disk, one of an image only in S3. */
  urls: string[];
  /** Bytes before the run (null: no manifest yet). */
  manifestBytes: Buffer | null;
  responseBytes: Buffer;
}

/** `count` actors, each with two images and a response.json naming two URLs; even ones have a manifest already. */
async function faultRoot(count: number): Promise<{ root: string; manifestsDir: string; actors: Actor[] }> {
  const root = await tempRoot();
  const actors: Actor[] = [];
  for (let i = 0; i < count; i++) {
    const id = String(10 + i).padStart(4, '0');
    const name = `${id}_fault`;
    await addImages(root, name, { [`${name}_1.png`]: 100 + i, [`${name}_2.png`]: 200 + i });
    const urls = [`${BASE}/${name}/${name}_1.png`, `${BASE}/${name}/${name}_9.png`];
    const response = await writeResponseJson(root, name, urls);
    const manifest = manifestPath(root, id);
    if (i % 2 === 0) await writeManifest(root, id, { character_id: id, character_name: name, notes: 'kept as is' });
    actors.push({
      name,
      id,
      manifest,
      response,
      urls,
      manifestBytes: existsSync(manifest) ? readFileSync(manifest) : null,
      responseBytes: readFileSync(response),
    });
  }
  return { root, manifestsDir: realpathSync(dirname(manifestPath(root, '0000'))), actors };
}

type Event =
  | { kind: 'renamed'; target: string }
  | { kind: 'dirsync'; n: number; phase: 'called' | 'ok' | 'failed' }
  /** A response.json (by its path) moved aside, or deleted there: the moment its URLs leave it. */
  | { kind: 'aside'; path: string };

interface Faults {
  /** An errno code to fail the first write to the temp file of this manifest (by file name) with. */
  write?: (manifestName: string) => string | undefined;
  /** The n-th fsync of the manifests folder (1-based): fail it with EIO, or hold it until `release` is called. */
  dirsync?: (n: number, release: (outcome: 'ok' | 'failed') => void) => 'fail' | 'hold' | undefined;
  /** After each manifest rename over its target (count so far). */
  renamed?: (count: number) => void;
  /** An errno code to fail the move of this response.json aside with. */
  moveAside?: (path: string) => string | undefined;
  /** An errno code to fail the deletion of this moved-aside response.json with. */
  deleteAside?: (path: string) => string | undefined;
}

const errno = (code: string, syscall: string) =>
  Object.assign(new Error(`${code}: injected fault, ${syscall}`), { code, syscall, errno: -1 });

/**
 * Wraps the `node:fs` calls a commit and a retirement make, recording what reached the disk in order (a
 * manifest renamed over its target, each fsync of the manifests folder, each response.json moved aside) and
 * injecting `faults`. Only this thread's calls: the worker reads in its own.
 */
function traceFs(manifestsDir: string, faults: Faults = {}): Event[] {
  const events: Event[] = [];
  const fds = new Map<number, string>();
  const real = { open: fs.open, close: fs.close, write: fs.write, fsync: fs.fsync, rename: fs.rename };
  const failedWrites = new Set<string>();
  let dirsyncs = 0;
  let renames = 0;
  const callbackOf = (args: unknown[]) => args.at(-1) as (error: Error | null, ...rest: unknown[]) => void;
  const withCallback = (args: unknown[], callback: (...rest: any[]) => void) => [...args.slice(0, -1), callback];

  vi.spyOn(fs, 'open').mockImplementation(((...args: unknown[]) => {
    const done = callbackOf(args);
    const path = String(args[0]);
    return Reflect.apply(
      real.open,
      fs,
      withCallback(args, (error: Error | null, fd: number) => {
        if (!error) fds.set(fd, path);
        done(error, fd);
      }),
    );
  }) as never);
  vi.spyOn(fs, 'close').mockImplementation(((...args: unknown[]) => {
    fds.delete(args[0] as number); // fds are reused
    return Reflect.apply(real.close, fs, args);
  }) as never);
  vi.spyOn(fs, 'write').mockImplementation(((...args: unknown[]) => {
    const path = fds.get(args[0] as number) ?? '';
    const target = /^\.actor-sync-\d+-[0-9a-f]{12}\.(.+_manifest\.json)\.tmp/.exec(basename(path))?.[1];
    const code =
      target !== undefined && dirname(path) === manifestsDir && !failedWrites.has(target)
        ? faults.write?.(target)
        : undefined;
    if (code) {
      failedWrites.add(target!);
      return void process.nextTick(callbackOf(args), errno(code, 'write'));
    }
    return Reflect.apply(real.write, fs, args);
  }) as never);
  vi.spyOn(fs, 'fsync').mockImplementation(((...args: unknown[]) => {
    if (fds.get(args[0] as number) !== manifestsDir) return Reflect.apply(real.fsync, fs, args);
    const n = ++dirsyncs;
    const done = callbackOf(args);
    events.push({ kind: 'dirsync', n, phase: 'called' });
    const finish = (error: Error | null) => {
      events.push({ kind: 'dirsync', n, phase: error ? 'failed' : 'ok' });
      done(error);
    };
    const go = (outcome: 'ok' | 'failed') =>
      outcome === 'failed'
        ? process.nextTick(finish, errno('EIO', 'fsync'))
        : Reflect.apply(real.fsync, fs, withCallback(args, finish));
    const fault = faults.dirsync?.(n, go);
    if (fault === 'hold') return;
    go(fault === 'fail' ? 'failed' : 'ok');
  }) as never);
  vi.spyOn(fs, 'rename').mockImplementation(((...args: unknown[]) => {
    const done = callbackOf(args);
    const target = String(args[1]);
    return Reflect.apply(
      real.rename,
      fs,
      withCallback(args, (error: Error | null) => {
        if (!error && dirname(target) === manifestsDir && target.endsWith('_manifest.json')) {
          events.push({ kind: 'renamed', target });
          faults.renamed?.(++renames);
        }
        done(error);
      }),
    );
  }) as never);

  const promises = { rename: fs.promises.rename, unlink: fs.promises.unlink };
  vi.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
    const path = String(from);
    if (basename(path) === 'response.json') {
      const code = faults.moveAside?.(path);
      if (code) throw errno(code, 'rename');
      events.push({ kind: 'aside', path });
    }
    return promises.rename(from, to);
  });
  vi.spyOn(fs.promises, 'unlink').mockImplementation(async (path) => {
    if (basename(String(path)) === RETIRING_NAME) {
      const code = faults.deleteAside?.(String(path));
      if (code) throw errno(code, 'unlink');
      // One a stopped run left aside is deleted where it is.
      events.push({ kind: 'aside', path: join(dirname(String(path)), 'response.json') });
    }
    return promises.unlink(path);
  });
  // retire.ts imports from `node:fs/promises` by name: its bindings follow the spies only once synced.
  syncBuiltinESMExports();
  return events;
}

function manifestUrls(path: string): string[] {
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as { training_data?: { s3_url: string | null }[] };
  return (manifest.training_data ?? []).flatMap((entry) => (entry.s3_url ? [entry.s3_url] : []));
}

/**
 * The guarantee itself, for every actor: its response.json is where it was, byte-identical; or it is gone
 * (or moved aside, byte-identical) and the manifest holds every URL it named, made durable before it went:
 * a manifests-folder fsync called after the manifest's last rename succeeded before the move.
 * @returns the actors whose response.json is no longer at its path.
 */
function expectNoUrlLost(actors: Actor[], events: Event[]): Actor[] {
  const gone: Actor[] = [];
  for (const actor of actors) {
    if (existsSync(actor.response)) {
      expect(readFileSync(actor.response).equals(actor.responseBytes), actor.response).toBe(true);
      continue;
    }
    gone.push(actor);
    const aside = join(dirname(actor.response), RETIRING_NAME);
    if (existsSync(aside)) expect(readFileSync(aside).equals(actor.responseBytes), aside).toBe(true);
    expect(manifestUrls(actor.manifest), actor.name).toEqual(expect.arrayContaining(actor.urls));
    const renamed = events.findLastIndex((event) => event.kind === 'renamed' && event.target === actor.manifest);
    const movedAside = events.findIndex((event) => event.kind === 'aside' && event.path === actor.response);
    expect(movedAside, `${actor.name}: response.json went without being moved aside or deleted there`).toBeGreaterThan(
      -1,
    );
    const durable = events.some((event, i) => {
      if (event.kind !== 'dirsync' || event.phase !== 'called' || i < renamed) return false;
      const ok = events.findIndex((other) => other.kind === 'dirsync' && other.n === event.n && other.phase === 'ok');
      return ok > -1 && ok < movedAside;
    });
    expect(durable, `${actor.name}: response.json moved aside before its manifest was durable`).toBe(true);
  }
  return gone;
}

function expectUnchanged(actor: Actor): void {
  if (actor.manifestBytes === null) expect(existsSync(actor.manifest), actor.manifest).toBe(false);
  else expect(readFileSync(actor.manifest).equals(actor.manifestBytes), actor.manifest).toBe(true);
  expect(readFileSync(actor.response).equals(actor.responseBytes), actor.response).toBe(true);
}

function reportOf(report: SyncReport, actor: Actor) {
  return report.actors.find((a) => a.name === actor.name)!;
}

/** No temp file left in the manifests folder (the lock is gone too, after the run). */
function expectCleanManifestsDir(manifestsDir: string): void {
  expect(readdirSync(manifestsDir).filter((name) => !name.endsWith('_manifest.json'))).toEqual([]);
}

/** A run with no fault afterwards takes every URL over and retires every response.json, durably. */
async function expectConverges(root: string, manifestsDir: string, actors: Actor[]): Promise<void> {
  vi.restoreAllMocks();
  const asideOf = (actor: Actor) => join(dirname(actor.response), RETIRING_NAME);
  const pending = actors.filter((actor) => existsSync(actor.response) || existsSync(asideOf(actor)));
  const events = traceFs(manifestsDir);
  const report = await runSync({ root, pool });
  expect(report.actors.flatMap((a) => a.errors)).toEqual([]);
  expect(expectNoUrlLost(pending, events)).toHaveLength(pending.length);
  for (const actor of actors) {
    expect(existsSync(actor.response) || existsSync(asideOf(actor))).toBe(false);
    expect(manifestUrls(actor.manifest)).toEqual(expect.arrayContaining(actor.urls));
  }
  expectCleanManifestsDir(manifestsDir);
}

describe('a write failing inside a real sync', () => {
  it('disk full writing two manifests (one new): those actors are left byte-identical, the others retire durably', async () => {
    const { root, manifestsDir, actors } = await faultRoot(4);
    const [full, fullNew] = [actors[2]!, actors[3]!]; // actor 3 has no manifest yet
    const events = traceFs(manifestsDir, {
      write: (name) =>
        [`${full.id}_manifest.json`, `${fullNew.id}_manifest.json`].includes(name) ? 'ENOSPC' : undefined,
    });

    const report = await runSync({ root, pool });

    for (const actor of [full, fullNew]) {
      expectUnchanged(actor);
      expect(reportOf(report, actor)).toMatchObject({ manifest: 'failed', legacy: 'failed' });
      expect(reportOf(report, actor).errors).toEqual([
        {
          actor: actor.name,
          file: actor.manifest,
          reason: expect.stringMatching(
            /^cannot be written: \(ENOSPC: injected fault, write\); the file was left unchanged\. .*\(response\.json kept\)$/,
          ),
        },
      ]);
    }
    expect(expectNoUrlLost(actors, events).map((a) => a.name)).toEqual([actors[0]!.name, actors[1]!.name]);
    expectCleanManifestsDir(manifestsDir);
    await expectConverges(root, manifestsDir, actors);
  });

  it('the rename done but the folder fsync failing: the new manifests stand, but no response.json goes; the next run retires them', async () => {
    const { root, manifestsDir, actors } = await faultRoot(3);
    const events = traceFs(manifestsDir, { dirsync: () => 'fail' });

    const report = await runSync({ root, pool });

    expect(expectNoUrlLost(actors, events)).toEqual([]);
    for (const actor of actors) {
      expect(reportOf(report, actor)).toMatchObject({ manifest: 'failed', legacy: 'failed' });
      expect(reportOf(report, actor).errors[0]!.reason).toMatch(
        /^cannot be written: written, but the folder could not be synced \(EIO: injected fault, fsync\)/,
      );
      expect(manifestUrls(actor.manifest)).toEqual(expect.arrayContaining(actor.urls)); // renamed: the new content
    }
    expect(events.filter((event) => event.kind === 'renamed')).toHaveLength(actors.length);
    await expectConverges(root, manifestsDir, actors);
  });

  it('several commits landing at once share one folder fsync: when it fails, every one of them keeps its response.json', async () => {
    const { root, manifestsDir, actors } = await faultRoot(8);
    // The first folder fsync is held until four more manifests are renamed, so those four wait together for
    // the next one, which fails; later fsyncs succeed. On a busy machine all five renames may land before the
    // first fsync is even called (it opens the folder first): it is released by whichever comes last.
    let held: ((outcome: 'ok' | 'failed') => void) | undefined;
    let renamed = 0;
    const releaseWhenDue = () => {
      if (!held || renamed < 5) return;
      const release = held;
      held = undefined;
      release('ok');
    };
    const events = traceFs(manifestsDir, {
      dirsync: (n, release) => {
        if (n === 1) {
          held = release;
          queueMicrotask(releaseWhenDue);
          return 'hold';
        }
        return n === 2 ? 'fail' : undefined;
      },
      renamed: (count) => {
        renamed = count;
        releaseWhenDue();
      },
    });

    const report = await runSync({ root, pool });

    const retired = expectNoUrlLost(actors, events);
    const failed = actors.filter((actor) => reportOf(report, actor).manifest === 'failed');
    expect(failed.length).toBeGreaterThanOrEqual(4);
    expect(retired.length + failed.length).toBe(actors.length);
    for (const actor of failed) {
      expect(reportOf(report, actor).errors[0]!.reason).toMatch(
        /^cannot be written: written, but the folder could not be synced \(EIO/,
      );
      expect(readFileSync(actor.response).equals(actor.responseBytes)).toBe(true);
    }
    // They shared one fsync, the only one that failed: each was renamed before it was called.
    const syncs = events.filter((event) => event.kind === 'dirsync');
    expect(syncs.filter((event) => event.phase === 'failed')).toEqual([{ kind: 'dirsync', n: 2, phase: 'failed' }]);
    const second = events.findIndex((event) => event.kind === 'dirsync' && event.n === 2 && event.phase === 'called');
    for (const actor of failed)
      expect(events.findIndex((event) => event.kind === 'renamed' && event.target === actor.manifest)).toBeLessThan(
        second,
      );
    expect(syncs.filter((event) => event.phase === 'called').length).toBeLessThan(actors.length);
    await expectConverges(root, manifestsDir, actors);
  });

  it('the lock lost before the commits: nothing is written, every manifest and response.json byte-identical', async () => {
    const { root, manifestsDir, actors } = await faultRoot(3);
    const data = { actorsDir: join(root, 'data', 'actors'), manifestsDir };
    let compromised!: (error: Error) => void;
    const lostNotice = new Promise<Error>((resolve) => (compromised = resolve));
    // The shortest staleness there is, so its holder refreshes it (and finds it gone) within a second.
    const lock = await acquireRunLock(data, undefined, { staleMs: 2_000, onCompromised: compromised });
    let lost: Promise<unknown> | undefined;
    // Someone removes the manifests folder's lock once the worker has read the first actor; the run notices at
    // its next refresh, before any commit.
    const losing: WorkerPool = {
      threads: pool.threads,
      assess: async (task) => {
        const assessment = await pool.assess(task);
        lost ??= rm(join(manifestsDir, '.actor-sync.lock'), { recursive: true }).then(() => lostNotice);
        await lost;
        return assessment;
      },
      urls: (task) => pool.urls(task),
      hash: (task) => pool.hash(task),
      start: () => pool.start(),
      destroy: async () => undefined,
    };
    const events = traceFs(manifestsDir);
    try {
      const report = await apply({ root, pool: losing }, { lock });
      for (const actor of actors) {
        expectUnchanged(actor);
        expect(reportOf(report, actor).manifest).toBe('failed');
        expect(reportOf(report, actor).errors[0]!.reason).toMatch(
          /^not written: this run lost its lock \(the lock .* was lost while this run held it/,
        );
      }
      expect(expectNoUrlLost(actors, events)).toEqual([]);
      expect(events.filter((event) => event.kind === 'renamed')).toEqual([]);
    } finally {
      await lock.release();
    }
    await expectConverges(root, manifestsDir, actors);
  });

  it('the retirement failing, moving response.json aside or deleting it: the file stays (aside, byte-identical), its URLs durable in the manifest', async () => {
    const { root, manifestsDir, actors } = await faultRoot(3);
    const [cannotMove, cannotDelete] = [actors[0]!, actors[1]!];
    const events = traceFs(manifestsDir, {
      moveAside: (path) => (path === cannotMove.response ? 'EACCES' : undefined),
      deleteAside: (path) => (path === join(dirname(cannotDelete.response), RETIRING_NAME) ? 'EIO' : undefined),
    });

    const report = await runSync({ root, pool });

    expect(expectNoUrlLost(actors, events).map((a) => a.name)).toEqual([cannotDelete.name, actors[2]!.name]);
    expect(readFileSync(cannotMove.response).equals(cannotMove.responseBytes)).toBe(true);
    const aside = join(trainingDir(root, cannotDelete.name), RETIRING_NAME);
    expect(readFileSync(aside).equals(cannotDelete.responseBytes)).toBe(true);
    for (const [actor, code] of [
      [cannotMove, 'EACCES'],
      [cannotDelete, 'EIO'],
    ] as const) {
      expect(reportOf(report, actor)).toMatchObject({
        manifest: actor.manifestBytes ? 'written' : 'created',
        legacy: 'failed',
      });
      expect(reportOf(report, actor).errors).toEqual([
        {
          actor: actor.name,
          file: actor.response,
          reason: expect.stringMatching(
            new RegExp(
              `^could not be deleted \\(${code}: injected fault, .*\\); kept \\(the manifest holds all its URLs\\)$`,
            ),
          ),
        },
      ]);
    }
    expect(reportOf(report, actors[2]!)).toMatchObject({ legacy: 'retired', errors: [] });
    // The next run reads the file left aside as the actor's legacy file, and retires it.
    await expectConverges(root, manifestsDir, actors);
  });
});
