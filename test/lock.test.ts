import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs, { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockHeldError, UsageError } from '../src/errors.js';
import { acquireLock, readLockOwner, seeLock, takeOver, type LockOwner, type RunLock } from '../src/lock/lock.js';
import { acquireRunLock } from '../src/lock/run-lock.js';
import { generateDataRoot } from '../demo/generate.js';
import { runCli } from './helpers/cli.js';
import { holdLock } from './helpers/lock.js';
import { snapshot } from './helpers/root.js';

const NAME = '.actor-sync.lock';
const HOLD_LOCK = fileURLToPath(new URL('./fixtures/lock/hold-lock.mjs', import.meta.url));
/** Longer than any test runs: a takeover seen here comes from the dead-owner check, not from staleness. */
const NEVER_STALE = 10 * 60_000;

let dir: string;
let lockPath: string;
const held: RunLock[] = [];
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'actor-sync-lock-'));
  lockPath = join(dir, NAME);
});
afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const lock of held.splice(0)) await lock.release();
  await rm(dir, { recursive: true, force: true });
});

async function take(options: Parameters<typeof acquireLock>[2] = {}, name = NAME): Promise<RunLock> {
  const lock = await acquireLock(dir, name, options);
  held.push(lock);
  return lock;
}

async function heldError(promise: Promise<unknown>): Promise<LockHeldError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LockHeldError);
  return error as LockHeldError;
}

/** Another actor-sync process holding the lock through the real `acquireLock`; resolves once it has it. */
async function spawnHolder(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [HOLD_LOCK, dir, NAME], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const [first] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => ['exited'])])) as string[];
  expect(first).toBe('locked');
  return child;
}

async function sigkill(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** An owner as another holder would write it. */
function ownerOf(owner: Partial<LockOwner>): LockOwner {
  return { pid: 1, hostname: hostname(), started: '2026-01-01T00:00:00.000Z', token: 'planted', ...owner };
}

/** A lock folder as another holder would leave it; `owner` undefined leaves no owner file. */
async function plantLock(owner: Partial<LockOwner> | undefined, ageMs = 0): Promise<void> {
  await mkdir(lockPath);
  if (owner) await writeFile(join(lockPath, 'owner.json'), JSON.stringify(ownerOf(owner)));
  if (ageMs > 0) {
    const then = new Date(Date.now() - ageMs);
    await utimes(lockPath, then, then);
  }
}

describe('acquireLock', () => {
  it('creates the lock folder with the owner inside, and removes it on release', async () => {
    const lock = await take();
    expect(lock.path).toBe(lockPath);
    expect(await readLockOwner(lockPath)).toMatchObject({ pid: process.pid, hostname: hostname() });
    expect(Number.isNaN(Date.parse((await readLockOwner(lockPath))!.started))).toBe(false);
    expect(lock.compromised).toBeUndefined();

    await lock.release();
    await lock.release(); // idempotent
    expect(existsSync(lockPath)).toBe(false);
  });

  it('fails at once while held, naming the lock and the holder, and succeeds after release', async () => {
    const first = await take();

    const error = await heldError(acquireLock(dir, NAME));
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(lockPath);
    expect(error.message).toContain(`pid ${process.pid} on host ${hostname()}`);
    expect(error.message).toContain('--wait');

    await first.release();
    const second = await take();
    expect(await readLockOwner(second.path)).toMatchObject({ pid: process.pid });
  });

  it('keeps locks of different names in one folder apart (run and shard locks)', async () => {
    await take({}, '.actor-sync.lock');
    const shard = await take({}, '.actor-sync-shard-1-of-2.lock');
    expect(shard.path).toBe(join(dir, '.actor-sync-shard-1-of-2.lock'));
    await heldError(acquireLock(dir, '.actor-sync-shard-1-of-2.lock'));
  });

  it('with wait, takes the lock once the holder releases it', async () => {
    const first = await take();
    let started!: (message: string) => void;
    const waitingStarted = new Promise<string>((resolve) => (started = resolve));

    const second = acquireLock(dir, NAME, { wait: true, onWait: started });
    const message = await waitingStarted;
    expect(message).toContain(`pid ${process.pid}`);
    await first.release();

    held.push(await second);
    expect(existsSync(lockPath)).toBe(true);
  });

  it('with wait, stops waiting when the signal aborts', async () => {
    await take();
    const controller = new AbortController();
    const waiting = acquireLock(dir, NAME, { wait: true, signal: controller.signal, onWait: () => controller.abort() });
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('names the folder and what to do when the lock cannot be made', async () => {
    const error = await acquireLock(join(dir, 'missing'), NAME).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect(error).not.toBeInstanceOf(LockHeldError);
    expect((error as UsageError).message).toContain(join(dir, 'missing', NAME));
    expect((error as UsageError & { code: string }).code).toBe('ENOENT');
  });
});

describe('a lock held by another process', () => {
  it('blocks while its holder lives, and is taken over at once after a SIGKILL', async () => {
    const child = await spawnHolder();

    const error = await heldError(acquireLock(dir, NAME, { staleMs: NEVER_STALE }));
    expect(error.message).toContain(`pid ${child.pid} on host ${hostname()}`);

    await sigkill(child);
    expect(await readLockOwner(lockPath)).toMatchObject({ pid: child.pid }); // the killed run left it behind
    const lock = await take({ staleMs: NEVER_STALE });
    expect(await readLockOwner(lock.path)).toMatchObject({ pid: process.pid });
  });

  it('with wait, is taken once its holder is killed', async () => {
    const child = await spawnHolder();
    const lock = await take({ wait: true, staleMs: NEVER_STALE, onWait: () => child.kill('SIGKILL') });
    expect(await readLockOwner(lock.path)).toMatchObject({ pid: process.pid });
  });

  it('with our pid but not our token (a restarted container), is taken over at once', async () => {
    await plantLock({ pid: process.pid, token: 'an-earlier-process' });
    const lock = await take({ staleMs: NEVER_STALE });
    expect(await readLockOwner(lock.path)).toMatchObject({ pid: process.pid });
  });
});

describe('a lock whose owner cannot be checked', () => {
  it('from another host blocks while fresh, naming that host', async () => {
    await plantLock({ pid: 4242, hostname: 'build-runner-7' });
    const error = await heldError(acquireLock(dir, NAME, { staleMs: NEVER_STALE }));
    expect(error.message).toContain('pid 4242 on host build-runner-7, started 2026-01-01T00:00:00.000Z');
  });

  it('from another host is taken over once stale', async () => {
    await plantLock({ pid: 4242, hostname: 'build-runner-7' }, 60_000);
    const lock = await take({ staleMs: 10_000 });
    expect(await readLockOwner(lock.path)).toMatchObject({ pid: process.pid, hostname: hostname() });
  });

  it('with no owner file blocks while fresh, and is taken over once stale', async () => {
    await plantLock(undefined);
    const error = await heldError(acquireLock(dir, NAME, { staleMs: NEVER_STALE }));
    expect(error.message).toContain('owner unknown');

    const then = new Date(Date.now() - 60_000);
    await utimes(lockPath, then, then);
    const lock = await take({ staleMs: 10_000 });
    expect(await readLockOwner(lock.path)).toMatchObject({ pid: process.pid });
  });
});

describe('runs racing for a lock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a takeover judged on a dead holder leaves alone the lock another waiter has taken over since', async () => {
    const killed = await spawnHolder();
    await sigkill(killed);
    // C reads the dead holder's lock; then B takes it over and makes its own before C acts.
    const judgedByC = await seeLock(lockPath);
    expect(judgedByC?.owner).toMatchObject({ pid: killed.pid });
    await take({ staleMs: NEVER_STALE });
    const ofB = await seeLock(lockPath);

    expect(await takeOver(lockPath, judgedByC!)).toBe(false);
    expect(await seeLock(lockPath)).toEqual(ofB);
    expect(await readdir(dir)).toEqual([NAME]);
    await heldError(acquireLock(dir, NAME, { staleMs: NEVER_STALE }));
  });

  it('a takeover judged on a stale lock with no owner leaves alone another folder put in its place', async () => {
    await plantLock(undefined, 60_000);
    const judged = await seeLock(lockPath);
    // Made before the first is removed, so it is surely another folder (inode).
    const replacement = `${lockPath}.replacement`;
    await mkdir(replacement);
    await rm(lockPath, { recursive: true });
    await rename(replacement, lockPath);
    const other = await seeLock(lockPath);

    expect(await takeOver(lockPath, judged!)).toBe(false);
    expect(await seeLock(lockPath)).toEqual(other);
    expect(await takeOver(lockPath, other!)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('the new holder removes only leftovers beside the lock, not a half-built folder a waiter is making', async () => {
    const leftover = (name: string) => join(dir, `${NAME}.${name}`);
    await mkdir(leftover('waiting.tmp')); // mkdir done, owner not yet written
    await mkdir(leftover('elsewhere.tmp'));
    await writeFile(
      join(leftover('elsewhere.tmp'), 'owner.json'),
      JSON.stringify(ownerOf({ hostname: 'build-runner-7' })),
    );
    await mkdir(leftover('old.tmp'));
    const then = new Date(Date.now() - 60_000);
    await utimes(leftover('old.tmp'), then, then);
    await mkdir(leftover('dead.gone'));
    await writeFile(join(leftover('dead.gone'), 'owner.json'), JSON.stringify(ownerOf({ pid: 2 ** 22 + 1 })));

    await take({ staleMs: 10_000 });
    expect((await readdir(dir)).sort()).toEqual([NAME, `${NAME}.elsewhere.tmp`, `${NAME}.waiting.tmp`]);
  });

  it('a run finding the lock held builds no temp folder beside it (nothing for the holder to clear)', async () => {
    await plantLock({ hostname: 'build-runner-7' });
    const opened = vi.spyOn(fs, 'open');
    await heldError(acquireLock(dir, NAME, { staleMs: NEVER_STALE }));
    expect(opened.mock.calls.map((call) => String(call[0])).filter((file) => file.includes('.tmp'))).toEqual([]);
  });

  it('a waiter whose half-built folder is cleared by a run taking the lock keeps waiting, then takes it', async () => {
    // Between the waiter's mkdir and its owner write, another run takes the lock and clears the folder.
    const open = fs.open;
    let raced = false;
    vi.spyOn(fs, 'open').mockImplementation(((file: fs.PathLike, ...rest: unknown[]) => {
      const building = dirname(String(file));
      if (!raced && basename(building).startsWith(`${NAME}.`) && building.endsWith('.tmp')) {
        raced = true;
        fs.mkdirSync(lockPath);
        fs.writeFileSync(join(lockPath, 'owner.json'), JSON.stringify(ownerOf({ hostname: 'build-runner-7' })));
        fs.rmSync(building, { recursive: true });
      }
      return (open as (...args: unknown[]) => void)(file, ...rest);
    }) as never);

    let waited = '';
    const lock = await take({
      wait: true,
      staleMs: NEVER_STALE,
      onWait: (message) => {
        waited = message;
        fs.rmSync(lockPath, { recursive: true });
      },
    });
    expect(raced).toBe(true);
    expect(waited).toContain('build-runner-7');
    expect(await readLockOwner(lock.path)).toMatchObject({ pid: process.pid });
  });
});

describe('a compromised lock', () => {
  it('is recorded, never thrown, and release leaves the new holder alone', async () => {
    let report!: (error: Error) => void;
    const reported = new Promise<Error>((resolve) => (report = resolve));
    const lock = await take({ staleMs: 2_000, onCompromised: report });

    // Someone removes the folder under us; the holder notices at its next refresh.
    await rm(lockPath, { recursive: true });
    const error = await reported;
    expect(lock.compromised).toBe(error);
    expect(error.message).toContain(lockPath);

    const next = await take();
    await lock.release();
    expect(await readLockOwner(next.path)).toMatchObject({ pid: process.pid });
    expect(existsSync(lockPath)).toBe(true);
  });
});

describe('acquireRunLock on a root never synced', () => {
  afterEach(() => vi.restoreAllMocks());

  it('makes the manifests folder and the folders above it durable (their parents are fsynced)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'actor-sync-runlock-'));
    try {
      const manifests = join(root, 'data', 'actor_manifests');
      // The actors folder lies elsewhere: `data` is made for the manifests folder.
      const data = { actorsDir: join(root, 'actors'), manifestsDir: manifests };
      await mkdir(data.actorsDir, { recursive: true });
      const opened = vi.spyOn(fs, 'open');
      const lock = await acquireRunLock(data, undefined);
      await lock.release();
      const dirs = opened.mock.calls.map((call) => call[0]);
      expect(dirs).toEqual(expect.arrayContaining([root, join(root, 'data')]));
      opened.mockClear();
      // Already there: nothing more to make durable.
      await (await acquireRunLock(data, undefined)).release();
      expect(opened.mock.calls.map((call) => call[0])).not.toContain(join(root, 'data'));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('acquireRunLock: one run at a time per data root, whatever --actors-dir or --manifests-dir say', () => {
  let root: string;
  const folders = (manifests: string, actors = join(root, 'data', 'actors')) => ({
    actorsDir: actors,
    manifestsDir: join(root, manifests),
  });
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'actor-sync-runlock-'));
    await mkdir(join(root, 'data', 'actors'), { recursive: true });
  });
  afterEach(async () => {
    for (const lock of held.splice(0)) await lock.release();
    await rm(root, { recursive: true, force: true });
  });
  const takeRun = async (...args: Parameters<typeof acquireRunLock>) => {
    const lock = await acquireRunLock(...args);
    held.push(lock);
    return lock;
  };

  it('two runs on one actors folder with different manifests folders exclude each other, the holder named', async () => {
    const first = await takeRun(folders('data/actor_manifests'), undefined);
    const error = await heldError(acquireRunLock(folders('elsewhere/manifests'), undefined));
    expect(error.message).toContain(join(root, 'data', 'actors', NAME));
    expect(error.message).toContain(`pid ${process.pid}`);
    // Nothing of the run that gave way is left behind.
    expect(fs.readdirSync(join(root, 'elsewhere', 'manifests'))).toEqual([]);
    await first.release();
    expect(fs.readdirSync(join(root, 'data', 'actors'))).toEqual([]);
    await (await takeRun(folders('elsewhere/manifests'), undefined)).release();
  });

  it('two actors folders sharing one manifests folder exclude each other', async () => {
    await mkdir(join(root, 'other-actors'));
    await takeRun(folders('data/actor_manifests'), undefined);
    const error = await heldError(
      acquireRunLock(folders('data/actor_manifests', join(root, 'other-actors')), undefined),
    );
    expect(error.message).toContain(join(root, 'data', 'actor_manifests', NAME));
    expect(fs.readdirSync(join(root, 'other-actors'))).toEqual([]);
  });

  it('shards of one count still run at once on one root with different manifests folders; a whole-root run does not', async () => {
    await takeRun(folders('m1'), { index: 1, count: 2 });
    await takeRun(folders('m2'), { index: 2, count: 2 });
    const error = await heldError(acquireRunLock(folders('m3'), undefined));
    expect(error.message).toMatch(/shard-\d-of-2\.lock, which covers actors this run would write/);
  });

  it('one folder named as both is locked once (no run waits for itself)', async () => {
    const lock = await takeRun(
      { actorsDir: join(root, 'data', 'actors'), manifestsDir: join(root, 'data', 'actors') },
      undefined,
    );
    expect(lock.path).toBe(join(root, 'data', 'actors', NAME));
  });

  it('a stale lock in the actors folder from a killed run is taken over; --wait waits for the actors folder too', async () => {
    await mkdir(join(root, 'data', 'actors', NAME));
    await writeFile(
      join(root, 'data', 'actors', NAME, 'owner.json'),
      JSON.stringify({ pid: 2 ** 22 + 1, hostname: hostname(), started: '2026-01-01T00:00:00.000Z', token: 'dead' }),
    );
    const lock = await takeRun(folders('data/actor_manifests'), undefined, { staleMs: NEVER_STALE });
    expect(await readLockOwner(lock.path)).toMatchObject({ pid: process.pid });
    let waiting = '';
    const second = acquireRunLock(folders('elsewhere'), undefined, {
      wait: true,
      onWait: (message) => (waiting = message),
    });
    await vi.waitFor(() => expect(waiting).toContain(lock.path));
    await lock.release();
    held.splice(held.indexOf(lock), 1);
    held.push(await second);
  });
});

describe('two real runs on one data root with different --manifests-dir', () => {
  it('the second fails at once (exit 2), retiring nothing; status, check and --dry-run take no lock and still run', async () => {
    const work = await mkdtemp(join(tmpdir(), 'actor-sync-runlock-'));
    try {
      const { root } = await generateDataRoot(join(work, 'root'), { actors: 12, minBytes: 1_000, maxBytes: 5_000 });
      const responses = () =>
        fs
          .readdirSync(join(root, 'data', 'actors'), { recursive: true })
          .filter((name) => String(name).endsWith('response.json')).length;
      const legacy = responses();
      expect(legacy).toBeGreaterThan(0);
      // Held by the test in the actors folder, the first lock a run takes: the runs below meet it, and it never
      // goes stale (a SIGSTOPped run's lock would, after 10 s).
      const holder = await holdLock(join(root, 'data', 'actors'));
      try {
        const other = join(work, 'other-manifests');
        const second = await runCli(['sync', '--root', root, '--manifests-dir', other]);
        expect(second.code, second.stderr).toBe(2);
        expect(second.stderr).toContain(`pid ${holder.pid}`);
        expect(responses(), 'no response.json retired by the run that gave way').toBe(legacy);
        // On the holder's own manifests folder too. Folders are in the snapshot with their mtimes: a lock
        // made and removed again would show.
        for (const manifestsDir of [[], ['--manifests-dir', other]]) {
          for (const args of [['status'], ['check'], ['sync', '--dry-run']]) {
            const what = [...args, ...manifestsDir].join(' ');
            const before = await snapshot(work, { folders: true });
            const r = await runCli([...args, '--root', root, ...manifestsDir]);
            expect(r.stderr, what).not.toMatch(/lock/);
            expect(r.code, `${what}: ${r.stderr}`).toBe(args[0] === 'check' ? 1 : 0);
            expect(await snapshot(work, { folders: true }), `${what} left no trace`).toEqual(before);
          }
        }
      } finally {
        await holder.release();
      }
      const first = await runCli(['sync', '--root', root, '--json']);
      expect(first.code, first.stderr).toBe(0);
      expect(responses()).toBe(0);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
