/**
 * One run at a time per data root (SPEC §3, invariant 5). The lock is a folder, `<dir>/<name>`, that appears
 * with its `owner.json` (pid, host, start time) already inside: it is built under a temp name and renamed into
 * place, so a run killed at any instant leaves either no lock or one whose owner is known, and the next run
 * takes over at once from a holder that died on this host. The holder refreshes the folder's mtime; anyone
 * takes over a lock not refreshed for the stale period (another host, an unknown owner, a frozen process).
 *
 * Our own, not proper-lockfile: its public API makes the lock folder with a bare mkdir, so the owner could
 * only be written after it (a kill in between leaves an unknown owner that blocks until stale), and its
 * takeover and unlock rmdir the folder, which fails once an owner file is inside.
 */
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import writeFileAtomic from 'write-file-atomic';
import type { LockOwner } from './owner.js';
export type { LockOwner } from './owner.js';
import { LockHeldError, UsageError, messageOf } from '../errors.js';

const OWNER_FILE = 'owner.json';
const DEFAULT_STALE_MS = 10_000;
/** A shorter stale period would take over the locks of runs merely slowed by a loaded machine. */
const MIN_STALE_MS = 2_000;
/** How often a waiting run looks again: a rename attempt and a stat, cheap enough to keep the wait short. */
const POLL_MS = 250;

export interface AcquireLockOptions {
  /** Wait until the lock is free instead of throwing {@link LockHeldError}. Default false. */
  wait?: boolean;
  /**
   * A lock not refreshed for this long is taken over, whoever holds it (another host, an unknown owner,
   * a frozen process). The holder refreshes it every `staleMs / 2`. Default 10 000, at least 2 000.
   */
  staleMs?: number;
  /** Aborts a wait: the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Called once when a wait begins, with who holds the lock (for a "waiting for …" line). */
  onWait?: (message: string) => void;
  /** Called if the lock is lost while held (see {@link RunLock.compromised}). Errors it throws are ignored. */
  onCompromised?: (error: Error) => void;
}

/** A held lock. */
export interface RunLock {
  /** The lock folder, `<dir>/<name>`. */
  readonly path: string;
  /**
   * When the lock was taken, by the clock of the file system holding it (its `owner.json`'s mtime, in ms
   * since the epoch): a file a crashed run left is older than this. See `removeStaleTemps`.
   */
  readonly takenMs: number;
  /**
   * Set if the lock was lost while held: its folder vanished, or was not refreshed in time and another run
   * took it over. Nothing is thrown (the process must not crash mid-commit); check this before each commit
   * and stop writing once it is set.
   */
  readonly compromised: Error | undefined;
  /** Removes the lock. Idempotent; leaves the folder alone if the lock was compromised (it may be another run's). */
  release(): Promise<void>;
}

/** Tokens of the locks this process holds or is taking, so a lock with our pid is told apart from a dead predecessor's. */
const ownTokens = new Set<string>();

/**
 * Takes the lock `<dir>/<name>` (a run takes `.actor-sync.lock` in its actors folder and in its manifests
 * folder, run-lock.ts; each shard passes its own name).
 *
 * Without `wait`, a lock held by a live run throws {@link LockHeldError} at once, naming the holder's pid,
 * host and start time. With `wait`, it polls until the lock is free or `signal` aborts. A lock whose owner
 * is dead (same host, no such pid) is taken over at once; one from another host or with no readable
 * owner is taken over once stale (`staleMs`).
 *
 * @example
 * const lock = await acquireLock(manifestsDir, '.actor-sync.lock', { wait: options.wait });
 * try { … } finally { await lock.release(); }
 */
export async function acquireLock(dir: string, name: string, options: AcquireLockOptions = {}): Promise<RunLock> {
  const path = resolve(dir, name);
  const staleMs = Math.max(options.staleMs ?? DEFAULT_STALE_MS, MIN_STALE_MS);
  let waiting = false;
  for (;;) {
    options.signal?.throwIfAborted();
    const lock = await tryLockIfFree(path, staleMs, options.onCompromised);
    if (lock) {
      await removeLeftovers(path, staleMs);
      return lock;
    }

    const seen = await seeLock(path);
    // Released since: try again at once.
    if (!seen) continue;
    if (isRemovable(seen, staleMs) && (await takeOver(path, seen))) continue;

    const holder = describeHolder(path, seen.owner);
    if (!options.wait) {
      throw new LockHeldError(
        `${holder}; wait for it, or pass --wait. A lock left by a killed run is taken over automatically (at once on the same host, else after ${staleMs / 1000} s).`,
      );
    }
    if (!waiting) {
      waiting = true;
      options.onWait?.(`waiting: ${holder}`);
    }
    await delay(POLL_MS, undefined, { signal: options.signal }).catch((error: unknown) => {
      options.signal?.throwIfAborted();
      throw error;
    });
  }
}

/** Who holds the lock at `lockPath`, or undefined when its `owner.json` is missing or unreadable. */
export async function readLockOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    // zod loads here, not with this module: taking a free lock reads no owner file.
    const { LockOwnerSchema } = await import('./owner.js');
    const parsed = LockOwnerSchema.safeParse(JSON.parse(await readFile(join(lockPath, OWNER_FILE), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    // Not written yet, half-removed, or garbage: all mean "owner unknown", which only staleness resolves.
    return undefined;
  }
}

/**
 * The lock, or undefined when another run holds it. A lock folder that exists is not even tried: building a
 * temp folder beside a held lock only gives its holder's leftover removal something to race with.
 */
async function tryLockIfFree(
  path: string,
  staleMs: number,
  onCompromised: ((error: Error) => void) | undefined,
): Promise<RunLock | undefined> {
  if (await exists(path)) return undefined;
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    started: new Date().toISOString(),
    token: randomUUID(),
  };
  ownTokens.add(owner.token);
  const made = await makeLock(path, owner).catch((error: unknown) => {
    ownTokens.delete(owner.token);
    throw error;
  });
  if (!made) {
    ownTokens.delete(owner.token);
    return undefined;
  }
  return heldLock(path, owner, made, staleMs, onCompromised);
}

/** A lock folder just made: its mtime then, and when it was taken (see {@link RunLock.takenMs}). */
interface MadeLock {
  mtimeMs: number;
  takenMs: number;
}

/** Makes the lock folder with `owner` inside; undefined when another run holds the lock. */
async function makeLock(path: string, owner: LockOwner): Promise<MadeLock | undefined> {
  try {
    await createWithOwner(path, owner);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return undefined;
    throw Object.assign(
      new UsageError(
        `cannot take the lock ${path}: ${messageOf(error)}; check that ${dirname(path)} exists and is writable.`,
      ),
      { code, cause: error },
    );
  }
  // Gone already: renamed away by a run taking over, which holds or puts back the lock: held either way.
  const folder = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!folder) return undefined;
  // The owner file is written once, as the lock is made (refreshes touch only the folder). Should it be
  // unreadable, this run's own clock at the start of the attempt stands in.
  const takenMs = await stat(join(path, OWNER_FILE)).then(
    (s) => s.mtimeMs,
    () => Date.parse(owner.started),
  );
  return { mtimeMs: folder.mtimeMs, takenMs };
}

/**
 * The lock just made, refreshed every `staleMs / 2` until released. A refresh that finds the folder gone or
 * touched by someone else, or comes later than `staleMs` (a frozen process), marks the lock compromised.
 */
function heldLock(
  path: string,
  owner: LockOwner,
  made: MadeLock,
  staleMs: number,
  onCompromised: ((error: Error) => void) | undefined,
): RunLock {
  let compromised: Error | undefined;
  let released: Promise<void> | undefined;
  let mtimeMs = made.mtimeMs;
  let refreshedAt = Date.now();
  const lose = (why: string) => {
    compromised ??= new Error(
      `the lock ${path} was lost while this run held it (${why}); another run may be writing the same files. Stop this run, then run again.`,
    );
    clearInterval(timer);
    try {
      onCompromised?.(compromised);
    } catch {
      // Called from a timer: a throw here would crash the process mid-commit.
    }
  };
  const refresh = async () => {
    try {
      if ((await stat(path)).mtimeMs !== mtimeMs) return lose('its folder was touched by another run');
      if (Date.now() - refreshedAt > staleMs)
        return lose(`not refreshed for ${staleMs / 1000} s, so another run may have taken it over`);
      const now = new Date();
      await utimes(path, now, now);
      mtimeMs = (await stat(path)).mtimeMs;
      refreshedAt = Date.now();
    } catch (error) {
      if (!released)
        lose((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'its folder was removed' : messageOf(error));
    }
  };
  // Unreferenced: a held lock keeps no process alive.
  const timer = setInterval(() => void (released || compromised || refresh()), staleMs / 2).unref();
  return {
    path,
    takenMs: made.takenMs,
    get compromised() {
      return compromised;
    },
    release() {
      clearInterval(timer);
      return (released ??= removeOnRelease(path, compromised !== undefined).finally(() =>
        ownTokens.delete(owner.token),
      ));
    },
  };
}

/** Removes the lock folder of a lock released, unless compromised: the folder may be another run's now. */
async function removeOnRelease(path: string, compromised: boolean): Promise<void> {
  if (compromised) return;
  await removeLockFolder(path).catch((error: NodeJS.ErrnoException) => {
    throw Object.assign(
      new Error(
        `could not remove the lock ${path} (${error.message}); remove it by hand once no actor-sync run is active.`,
        { cause: error },
      ),
      { code: error.code },
    );
  });
}

/**
 * Removes a lock folder by renaming it away first, so a run taking the lock at that moment never sees its
 * fresh owner file deleted. False when it was gone already.
 */
async function removeLockFolder(path: string): Promise<boolean> {
  const gone = `${path}.${randomUUID()}.gone`;
  try {
    await rename(path, gone);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  await rm(gone, { recursive: true, force: true });
  return true;
}

/**
 * Removes what killed runs left beside the lock: half-built (`.tmp`) and half-removed (`.gone`) lock
 * folders. Only leftovers: a waiting run may be building one this instant, a releasing run removing one.
 */
async function removeLeftovers(path: string, staleMs: number): Promise<void> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  const candidates = names.filter(
    (name) => name.startsWith(prefix) && (name.endsWith('.tmp') || name.endsWith('.gone')),
  );
  await Promise.all(
    candidates.map(async (name) => {
      const folder = join(dir, name);
      if (await isLeftover(folder, staleMs)) await rm(folder, { recursive: true, force: true });
    }),
  );
}

/** True when no live run uses the `.tmp` or `.gone` folder: untouched for `staleMs`, or its owner is dead. */
async function isLeftover(folder: string, staleMs: number): Promise<boolean> {
  const stats = await lstat(folder).catch(() => undefined);
  if (!stats) return false;
  if (Date.now() - stats.mtimeMs > staleMs) return true;
  const owner = await readLockOwner(folder);
  return owner !== undefined && isDeadHere(owner);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** Builds the lock folder with its owner file under a temp name, then renames it into place; EEXIST when held. */
async function createWithOwner(path: string, owner: LockOwner): Promise<void> {
  const building = `${path}.${owner.token}.tmp`;
  const held = () => Object.assign(new Error(`EEXIST: ${path} exists`), { code: 'EEXIST' });
  // ENOENT here is a real error: the folder to lock is missing.
  await mkdir(building);
  try {
    await writeFileAtomic(join(building, OWNER_FILE), `${JSON.stringify(owner, null, 2)}\n`, { fsync: false });
    // rename() would replace an empty folder: a lock folder that exists in any form is held.
    if (await exists(path)) throw held();
    await rename(building, path);
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    // ENOENT: a run that has just taken the lock cleared our half-built folder as a leftover: held all the same.
    const code = (error as NodeJS.ErrnoException).code;
    throw code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT' ? held() : error;
  }
}

/**
 * True when a lock folder at `lockPath` belongs to a run that may still be going: its owner is alive (or on
 * another host), or, with no readable owner, the folder was refreshed within the stale period.
 */
export async function isLockLive(lockPath: string, staleMs = DEFAULT_STALE_MS): Promise<boolean> {
  const owner = await readLockOwner(lockPath);
  if (owner) return !isDeadHere(owner);
  const stats = await lstat(lockPath).catch(() => undefined);
  return stats !== undefined && Date.now() - stats.mtimeMs < staleMs;
}

/** True when the owner ran on this host and is gone. */
function isDeadHere(owner: LockOwner): boolean {
  if (owner.hostname !== hostname()) return false;
  // Our own pid but not one of our tokens: an earlier process with the same pid (a restarted container).
  if (owner.pid === process.pid) return !ownTokens.has(owner.token);
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error) {
    // EPERM: the process exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** A lock folder as a run judged it: which folder (inode), when last refreshed, and who owns it. */
export interface SeenLock {
  ino: number;
  mtimeMs: number;
  owner: LockOwner | undefined;
}

/** The lock folder at `path` as it is now, or undefined when there is none. Exported for tests. */
export async function seeLock(path: string): Promise<SeenLock | undefined> {
  const stats = await lstat(path).catch(() => undefined);
  if (!stats) return undefined;
  return { ino: stats.ino, mtimeMs: stats.mtimeMs, owner: await readLockOwner(path) };
}

/** True when the lock seen may be taken over: its owner died on this host, or it was not refreshed within `staleMs`. */
function isRemovable(seen: SeenLock, staleMs: number): boolean {
  return (seen.owner !== undefined && isDeadHere(seen.owner)) || Date.now() - seen.mtimeMs > staleMs;
}

/**
 * Removes the lock `seen` and judged removable, and only it: since then another run may have taken it over
 * and made a fresh lock at `path`. So the folder is renamed away, then compared with `seen`, and put back
 * when it differs. True when the next attempt may find the lock free; false when it counts as held (also
 * when it cannot be renamed: not ours). Exported for tests.
 */
export async function takeOver(path: string, seen: SeenLock): Promise<boolean> {
  const gone = `${path}.${randomUUID()}.gone`;
  try {
    await rename(path, gone);
  } catch (error) {
    // ENOENT: removed by another run already; try again.
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
  if (await isSeenLock(gone, seen)) {
    await rm(gone, { recursive: true, force: true });
    return true;
  }
  // A lock made in the instant it was away wins; the one renamed away learns it at its next refresh.
  await rename(gone, path).catch(() => rm(gone, { recursive: true, force: true }));
  return false;
}

/** True when `folder` is the lock `seen`, or was removed meanwhile as a leftover (so was no live run's). */
async function isSeenLock(folder: string, seen: SeenLock): Promise<boolean> {
  const stats = await lstat(folder).catch(() => undefined);
  if (!stats) return true;
  const owner = await readLockOwner(folder);
  return stats.ino === seen.ino && stats.mtimeMs === seen.mtimeMs && owner?.token === seen.owner?.token;
}

function describeHolder(path: string, owner: LockOwner | undefined): string {
  const who = owner
    ? `pid ${owner.pid} on host ${owner.hostname}, started ${owner.started}`
    : `owner unknown: ${join(path, OWNER_FILE)} is missing or unreadable`;
  return `another actor-sync run (${who}) holds ${path}`;
}
