/**
 * One run at a time per data root (SPEC §3, invariant 5). proper-lockfile does the locking: an atomic
 * mkdir of `<dir>/<name>`, whose mtime the holder refreshes, and which anyone may take over once it is
 * stale. Inside that folder the holder leaves `owner.json` (pid, host, start time), so that a second run
 * can name the holder and take over at once from a holder that was killed on this host.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { lstat, mkdir, readFile, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import type { LockOwner } from './lock-owner.js';
export type { LockOwner } from './lock-owner.js';
import { LockHeldError, UsageError, messageOf } from './errors.js';


const OWNER_FILE = 'owner.json';
/** proper-lockfile's default; it refuses anything under 2 s. */
const DEFAULT_STALE_MS = 10_000;
const MIN_STALE_MS = 2_000;
/** How often a waiting run looks again: a mkdir and a stat, cheap enough to keep the wait short. */
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
  const agedOwners = new Set<string>();
  let waiting = false;
  for (;;) {
    options.signal?.throwIfAborted();
    const lock = await tryLock(path, staleMs, options.onCompromised);
    if (lock) {
      await removeLeftovers(path);
      return lock;
    }

    const owner = await readLockOwner(path);
    // Once per owner, so a lock we cannot age (not ours to utimes) cannot spin this loop.
    if (owner && isDeadHere(owner) && !agedOwners.has(owner.token)) {
      agedOwners.add(owner.token);
      if (await ageLock(path)) continue;
    }

    const holder = describeHolder(path, owner);
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
    const { LockOwnerSchema } = await import('./lock-owner.js');
    const parsed = LockOwnerSchema.safeParse(JSON.parse(await readFile(join(lockPath, OWNER_FILE), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    // Not written yet, half-removed, or garbage: all mean "owner unknown", which only staleness resolves.
    return undefined;
  }
}

/** The lock, or undefined when a live run holds it. */
async function tryLock(path: string, staleMs: number, onCompromised: ((error: Error) => void) | undefined): Promise<RunLock | undefined> {
  const owner: LockOwner = { pid: process.pid, hostname: hostname(), started: new Date().toISOString(), token: randomUUID() };
  let compromised: Error | undefined;
  let unlock: () => Promise<void>;
  ownTokens.add(owner.token);
  try {
    unlock = await lockfile.lock(path, {
      lockfilePath: path,
      // The lock folder is the locked "file": it does not exist yet, and keying proper-lockfile's table by
      // it keeps two locks in one folder (run and shard) apart.
      realpath: false,
      stale: staleMs,
      retries: 0,
      fs: lockFs(path, owner),
      onCompromised: (error) => {
        compromised ??= new Error(
          `the lock ${path} was lost while this run held it (${error.message}); another run may be writing the same files. Stop this run, then run again.`,
          { cause: error },
        );
        try {
          onCompromised?.(compromised);
        } catch {
          // proper-lockfile calls this from a timer: a throw here would crash the process mid-commit.
        }
      },
    });
  } catch (error) {
    ownTokens.delete(owner.token);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOCKED') return undefined;
    throw Object.assign(
      new UsageError(`cannot take the lock ${path}: ${messageOf(error)}; check that ${dirname(path)} exists and is writable.`),
      { code, cause: error },
    );
  }

  // The owner file is written once, as the lock is made (refreshes touch only the folder). Should it be
  // unreadable, this run's own clock at the start of the attempt stands in.
  const takenMs = await stat(join(path, OWNER_FILE)).then((s) => s.mtimeMs, () => Date.parse(owner.started));
  let released: Promise<void> | undefined;
  return {
    path,
    takenMs,
    get compromised() {
      return compromised;
    },
    release() {
      released ??= unlock()
        .catch((error: NodeJS.ErrnoException) => {
          // ERELEASED: compromised, so the folder may be another run's now and is not ours to remove.
          if (error.code === 'ERELEASED') return;
          throw Object.assign(
            new Error(`could not remove the lock ${path} (${error.message}); remove it by hand once no actor-sync run is active.`, { cause: error }),
            { code: error.code },
          );
        })
        .finally(() => ownTokens.delete(owner.token));
      return released;
    },
  };
}

/**
 * The `fs` proper-lockfile uses for this lock. The lock folder appears with `owner.json` already inside
 * (built under a temp name, then renamed into place), so a run killed at any instant never leaves a lock
 * whose owner is unknown, which only staleness could clear. Removal renames the folder away before deleting
 * it, so a run taking the lock at that moment never sees its fresh owner file deleted.
 */
function lockFs(path: string, owner: LockOwner): typeof fs {
  return {
    ...fs,
    mkdir: ((target: string, callback: (error: NodeJS.ErrnoException | null) => void) => {
      if (target !== path) return fs.mkdir(target, callback);
      createWithOwner(path, owner).then(() => callback(null), callback);
    }) as typeof fs.mkdir,
    rmdir: ((target: string, callback: (error: NodeJS.ErrnoException | null) => void) => {
      if (target !== path) return fs.rmdir(target, callback);
      const gone = `${path}.${randomUUID()}.gone`;
      fs.rename(path, gone, (error) => (error ? callback(error) : fs.rm(gone, { recursive: true, force: true }, callback)));
    }) as typeof fs.rmdir,
    rmdirSync: ((target: string) => {
      if (target !== path) return fs.rmdirSync(target);
      const gone = `${path}.${randomUUID()}.gone`;
      try {
        fs.renameSync(path, gone);
      } catch {
        return;
      }
      fs.rmSync(gone, { recursive: true, force: true });
    }) as typeof fs.rmdirSync,
  };
}

/**
 * Removes what killed runs left beside the lock: half-built (`.tmp`) and half-removed (`.gone`) lock
 * folders. Holding the lock, nothing else can be building one that matters.
 */
async function removeLeftovers(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((name) => name.startsWith(prefix) && (name.endsWith('.tmp') || name.endsWith('.gone')))
      .map((name) => rm(join(dir, name), { recursive: true, force: true })),
  );
}

/** Builds the lock folder with its owner file under a temp name, then renames it into place; EEXIST when held. */
async function createWithOwner(path: string, owner: LockOwner): Promise<void> {
  const building = `${path}.${owner.token}.tmp`;
  const held = () => Object.assign(new Error(`EEXIST: ${path} exists`), { code: 'EEXIST' });
  await mkdir(building);
  try {
    await writeFileAtomic(join(building, OWNER_FILE), `${JSON.stringify(owner, null, 2)}\n`, { fsync: false });
    // rename() would replace an empty folder: a lock folder that exists in any form is held.
    if (await lstat(path).then(() => true, () => false)) throw held();
    await rename(building, path).catch((error: NodeJS.ErrnoException) => {
      // ENOENT: the holder cleared our half-built folder as a leftover: it is held all the same.
      throw error.code === 'ENOTEMPTY' || error.code === 'EEXIST' || error.code === 'ENOENT' ? held() : error;
    });
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    throw error;
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

/**
 * Makes a dead owner's lock stale, so proper-lockfile's own takeover (remove, then mkdir) claims it; one
 * takeover path for dead and stale owners alike. Two runs starting at the same instant race here exactly as in
 * proper-lockfile's stale takeover; the loser learns it at its next refresh (`compromised`). False when the
 * lock could not be aged.
 */
async function ageLock(path: string): Promise<boolean> {
  try {
    await utimes(path, 0, 0);
    return true;
  } catch (error) {
    // Gone already: free for the next attempt.
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

function describeHolder(path: string, owner: LockOwner | undefined): string {
  const who = owner
    ? `pid ${owner.pid} on host ${owner.hostname}, started ${owner.started}`
    : `owner unknown: ${join(path, OWNER_FILE)} is missing or unreadable`;
  return `another actor-sync run (${who}) holds ${path}`;
}
