import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs, { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockHeldError, UsageError } from '../src/errors.js';
import { acquireLock, readLockOwner, type LockOwner, type RunLock } from '../src/lock.js';
import { acquireRunLock } from '../src/run-lock.js';

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
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
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

/** A lock folder as another holder would leave it; `owner` undefined leaves no owner file. */
async function plantLock(owner: Partial<LockOwner> | undefined, ageMs = 0): Promise<void> {
  await mkdir(lockPath);
  if (owner) {
    const full: LockOwner = { pid: 1, hostname: hostname(), started: '2026-01-01T00:00:00.000Z', token: 'planted', ...owner };
    await writeFile(join(lockPath, 'owner.json'), JSON.stringify(full));
  }
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

describe('a compromised lock', () => {
  it('is recorded, never thrown, and release leaves the new holder alone', async () => {
    let report!: (error: Error) => void;
    const reported = new Promise<Error>((resolve) => (report = resolve));
    const lock = await take({ staleMs: 2_000, onCompromised: report });

    // Someone removes the folder under us; proper-lockfile notices at its next refresh.
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
      const opened = vi.spyOn(fs, 'open');
      const lock = await acquireRunLock(manifests, undefined);
      await lock.release();
      const dirs = opened.mock.calls.map((call) => call[0]);
      expect(dirs).toEqual(expect.arrayContaining([root, join(root, 'data')]));
      opened.mockClear();
      // Already there: nothing more to make durable.
      await (await acquireRunLock(manifests, undefined)).release();
      expect(opened.mock.calls.map((call) => call[0])).not.toContain(join(root, 'data'));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
