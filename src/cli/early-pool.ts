/**
 * The worker threads, started before the CLI's own modules load. A thread takes tens of milliseconds to load
 * its modules and a short run lasts well under a second, so the threads boot while commander and the command
 * load. The command adopts the pool when its `--workers` agrees; otherwise the pool is destroyed.
 *
 * Not for a `sync`, `check` or `status` that will likely need no thread: when a sync cache of its manifests folder exists, the cache
 * may settle every actor, and two threads booting would only take the two cores from the one that works.
 */
import { readdirSync, realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { WorkerPool } from '../pool.js';
import { cacheDir, cachePrefix, newerThanManifests } from '../cache-path.js';
import { rootPaths } from '../root.js';

/** The commands that run the engine (see `runEngine`). */
const ENGINE_COMMANDS = new Set(['sync', 'status', 'check', 'push', 'pull']);
/** Those the sync cache may settle (push and pull look at every actor). */
const SETTLING_COMMANDS = new Set(['sync', 'status', 'check']);

export interface EarlyPool {
  /** The pool, when it has `threads` threads (the `--workers` the command parsed); else it is destroyed. */
  take(threads: number | undefined): Promise<WorkerPool | undefined>;
  /** Destroys the pool unless a command took it. */
  release(): Promise<void>;
}

/** True for a command line that runs the engine (a batch: sync, status, check, push, pull), help aside. */
export function isEngineCommand(argv: readonly string[]): boolean {
  return ENGINE_COMMANDS.has(argv[0] ?? '') && !argv.includes('--help') && !argv.includes('-h');
}

/** Starts the pool an engine command will want; undefined for every other command line. */
export function startEarlyPool(argv: readonly string[]): EarlyPool | undefined {
  if (!isEngineCommand(argv)) return undefined;
  if (SETTLING_COMMANDS.has(argv[0]!) && likelySettled(argv)) return undefined;
  const threads = workersOf(argv) ?? availableParallelism();
  let pool: Promise<WorkerPool> | undefined = import('../pool.js').then(({ createPool }) => createPool(threads));
  // A pool that cannot start fails the command that takes it (poolFor starts another, which fails the same way).
  pool.catch(() => undefined);
  const release = async () => {
    const unused = pool;
    pool = undefined;
    await (await unused?.catch(() => undefined))?.destroy();
  };
  return {
    async take(wanted) {
      if (!pool || threads !== (wanted ?? availableParallelism())) {
        await release();
        return undefined;
      }
      const taken = pool;
      pool = undefined;
      return taken.catch(() => undefined);
    },
    release,
  };
}

/** The pool a command runs on: the early one when it has `threads` threads, else a new one. */
export async function poolFor(early: EarlyPool | undefined, threads: number | undefined): Promise<WorkerPool> {
  return (await early?.take(threads)) ?? (await import('../pool.js')).createPool(threads);
}

/**
 * True when a sync cache of the manifests folder this command names exists, newer than every manifest, and the run may use it (not with
 * `--verify`, which looks at every actor; `--remote` settles actors whose entry knows what S3 held). A guess from the command line only:
 * a wrong one costs some speed, never a result.
 */
function likelySettled(argv: readonly string[]): boolean {
  if (argv.includes('--verify')) return false;
  const manifests = rootPaths({ root: lastValue(argv, '--root'), manifestsDir: lastValue(argv, '--manifests-dir') }).manifestsDir;
  try {
    const prefix = cachePrefix(realpathSync.native(manifests));
    return readdirSync(cacheDir()).some((name) => name.startsWith(prefix) && newerThanManifests(join(cacheDir(), name), manifests));
  } catch {
    return false;
  }
}

/** The last `--name VALUE` / `--name=VALUE` before `--`. */
function lastValue(argv: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (const [i, arg] of argv.entries()) {
    if (arg === '--') break;
    if (arg === name) value = argv[i + 1];
    else if (arg.startsWith(`${name}=`)) value = arg.slice(name.length + 1);
  }
  return value;
}

/** The last `--workers N` / `--workers=N`, when it is a plain count; commander judges anything else. */
function workersOf(argv: readonly string[]): number | undefined {
  const value = lastValue(argv, '--workers');
  return value !== undefined && /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 256 ? Number(value) : undefined;
}
