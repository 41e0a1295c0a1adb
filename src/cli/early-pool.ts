/**
 * The worker threads, started before the CLI's own modules load. A thread takes about 0.15 s to load its
 * modules and a warm sync lasts well under a second, so the threads boot while commander and the command
 * load. The command adopts the pool when its `--workers` agrees; otherwise the pool is destroyed.
 */
import { availableParallelism } from 'node:os';
import { createPool, type WorkerPool } from '../pool.js';

/** The commands that run the engine (see `runEngine`). */
const ENGINE_COMMANDS = new Set(['sync', 'status', 'check', 'push', 'pull']);

export interface EarlyPool {
  /** The pool, when it has `threads` threads (the `--workers` the command parsed); else it is destroyed. */
  take(threads: number | undefined): Promise<WorkerPool | undefined>;
  /** Destroys the pool unless a command took it. */
  release(): Promise<void>;
}

/** Starts the pool an engine command will want; undefined for every other command line. */
export function startEarlyPool(argv: readonly string[]): EarlyPool | undefined {
  if (!ENGINE_COMMANDS.has(argv[0] ?? '') || argv.includes('--help') || argv.includes('-h')) return undefined;
  let pool: WorkerPool | undefined = createPool(workersOf(argv) ?? availableParallelism());
  const release = async () => {
    const unused = pool;
    pool = undefined;
    await unused?.destroy();
  };
  return {
    async take(threads) {
      if (pool?.threads !== (threads ?? availableParallelism())) {
        await release();
        return undefined;
      }
      const taken = pool;
      pool = undefined;
      return taken;
    },
    release,
  };
}

/** The pool a command runs on: the early one when it has `threads` threads, else a new one. */
export async function poolFor(early: EarlyPool | undefined, threads: number | undefined): Promise<WorkerPool> {
  return (await early?.take(threads)) ?? createPool(threads);
}

/** The last `--workers N` / `--workers=N`, when it is a plain count; commander judges anything else. */
function workersOf(argv: readonly string[]): number | undefined {
  let value: string | undefined;
  for (const [i, arg] of argv.entries()) {
    if (arg === '--') break;
    if (arg === '--workers') value = argv[i + 1];
    else if (arg.startsWith('--workers=')) value = arg.slice('--workers='.length);
  }
  return value !== undefined && /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 256 ? Number(value) : undefined;
}
