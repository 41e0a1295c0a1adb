/** The options every command shares (SPEC §4), their parsing, and how a command writes its results. */
import { InvalidArgumentError, type Command } from 'commander';
import { parseShard } from '../engine/shard.js';
import type { SyncSummary } from '../engine/summary.js';
import type { PlanView, SyncOptions, SyncReport } from '../engine/sync.js';
import { setFlagsFromString } from 'node:v8';
import type { WorkerPool } from '../engine/pool.js';
import { lazyPool } from '../engine/lazy-pool.js';

export interface CommonFlags {
  root?: string;
  actorsDir?: string;
  manifestsDir?: string;
  actor: string[];
  json?: boolean;
  quiet?: boolean;
  workers?: number;
  shard?: string;
  shardCount?: number;
}

/** The S3 options of SPEC §5 (standard AWS credential chain and region). */
export interface S3Flags {
  remote?: boolean;
  endpoint?: string;
  forcePathStyle?: boolean;
  s3Concurrency?: number;
}

/** Where a command writes; the entry passes the process streams, tests pass their own. */
export interface CommandContext {
  stdout: { write(text: string): unknown };
  stderr: NodeJS.WriteStream | { write(text: string): unknown; isTTY?: boolean };
  signal?: AbortSignal;
  /** A command whose normal stop is SIGINT/SIGTERM (serve) calls this: it then exits with its own code. */
  signalIsStop?: () => void;
}

/** Where the data is: `--root`, `--actors-dir`, `--manifests-dir` (every command that reads a data root). */
export function addRootOptions(command: Command): Command {
  return command
    .option('--root <dir>', 'the data root (default: the current directory)')
    .option('--actors-dir <dir>', 'actor folders (default: <root>/data/actors)')
    .option('--manifests-dir <dir>', 'manifests (default: <root>/data/actor_manifests)');
}

export function addCommonOptions(command: Command): Command {
  return addRootOptions(command)
    .option('--actor <id-or-name>', 'only this actor: 0, 0000 or the full name (repeatable)', collect, [])
    .option('--json', 'print one JSON document on stdout')
    .option('--quiet', 'no progress, no warnings, no summary: results and errors only')
    .option('--workers <n>', 'worker threads (default: available parallelism)', threadCount)
    .option('--shard <k/n>', 'only the actors of shard K of N (1-based; stable across runs)')
    .option(
      '--shard-count <n>',
      'with JOB_COMPLETION_INDEX (0-based, a Kubernetes Indexed Job): the number of shards',
      positiveInteger,
    );
}

/** `--remote` and the S3 connection options. */
export function addS3Options(command: Command, withRemote = true): Command {
  if (withRemote) command.option('--remote', 'verify against S3 by listing what the URLs point to');
  return command
    .option('--endpoint <url>', 'an S3-compatible endpoint (default: AWS_ENDPOINT_URL_S3, else AWS)')
    .option('--force-path-style', 'path-style requests (most S3-compatible stores need it)')
    .option('--s3-concurrency <n>', 'S3 requests in flight (default 16)', positiveInteger);
}

/** The S3 client options the flags select. */
export function s3OptionsOf(flags: S3Flags): { endpoint?: string; forcePathStyle?: boolean; concurrency?: number } {
  return { endpoint: flags.endpoint, forcePathStyle: flags.forcePathStyle, concurrency: flags.s3Concurrency };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A `--workers` count: what piscina can run, at most 256 threads. */
export function threadCount(value: string): number {
  const n = positiveInteger(value);
  if (n > 256) throw new InvalidArgumentError(`at most 256 threads, got ${n}`);
  return n;
}

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 10_000)
    throw new InvalidArgumentError(`expected a whole number from 1 to 10000, got "${value}"`);
  return n;
}

/**
 * The worker pool of a batch command (sync, status, check, push, pull), under 8 × V8's default optimizer
 * budget (only on Node 20, where it was measured; V8 prints an error for a flag it does not know): a short
 * run's hot loop is WebAssembly, and the optimizer's threads take CPU and memory from the hashing. Without
 * it (issue 16, bench/README.md): cold scale-10 peak RSS 180 → 198 MB (two of five runs over SPEC §7's
 * 200 MB), cold scale-1 CPU +11 %; wall times within noise.
 */
export async function createBatchPool(threads: number | undefined): Promise<WorkerPool> {
  if (process.versions.node.startsWith('20.')) setFlagsFromString(`--interrupt-budget=${8 * 67_584}`);
  return (await import('../engine/pool.js')).createPool(threads);
}

/**
 * Runs the engine for a command. Modules load on demand (all of them at start: warm sync +64 % at scale 1,
 * +26 % at scale 10); the worker threads start when the first actor needs one, so a run the sync cache settles
 * whole starts none (started at once: warm +39 % / +18 %; bench/ab.sh, issue 16).
 */
export async function runEngine(
  flags: CommonFlags & S3Flags,
  label: string,
  context: CommandContext,
  options: Partial<SyncOptions>,
  extraActors: string[] = [],
  view?: PlanView,
): Promise<{ result: SyncReport; summaries: typeof import('../engine/summary.js') }> {
  const shard = parseShard(flags.shard, flags.shardCount);
  // Threads only when an actor needs one (the sync cache may settle them all). Every path below destroys
  // them, a usage error included (pool.ts lets each thread finish loading before it is stopped).
  const pool = lazyPool(flags.workers, () => createBatchPool(flags.workers));
  try {
    const [{ runSync, plan }, { createProgress }] = await Promise.all([
      import('../engine/sync.js'),
      import('../engine/progress.js'),
    ]);
    const progress = await createProgress({
      label,
      quiet: flags.quiet ?? false,
      stream: context.stderr as NodeJS.WriteStream,
    });
    const actors = [...flags.actor, ...extraActors];
    const run = {
      root: flags.root,
      actorsDir: flags.actorsDir,
      manifestsDir: flags.manifestsDir,
      actors: actors.length > 0 ? actors : undefined,
      shard,
      pool,
      signal: context.signal,
      // A held lock is waited for only with --wait; say so while waiting.
      onWait: flags.quiet ? undefined : (message: string) => void context.stderr.write(`actor-sync: ${message}\n`),
      progress,
      remote: flags.remote ? s3OptionsOf(flags) : undefined,
      ...options,
    };
    const running = view ? plan(run, view) : runSync(run);
    // The summary's schemas (zod) load while the threads work: nothing before the first task needs them.
    const [result, summaries] = await Promise.all([running, import('../engine/summary.js')]);
    return { result, summaries };
  } finally {
    await pool.destroy();
  }
}

/**
 * Writes the result: the summary as one JSON document, or as text: the command's `results` (status's table,
 * check's differences, the transfers), then its `verdict` line and the summary; problems on stderr.
 * `--quiet` drops warnings, the verdict and the summary, never the results.
 */
export async function report(
  context: CommandContext,
  flags: CommonFlags,
  summary: SyncSummary,
  results = '',
  verdict = '',
): Promise<void> {
  const [{ formatProblems, formatSummary }, { md5FallbackWarning }] = await Promise.all([
    import('../engine/summary.js'),
    import('../md5/engine.js'),
  ]);
  context.stderr.write(formatProblems('error', summary.errors));
  if (!flags.quiet) context.stderr.write(formatProblems('warning', summary.warnings) + md5FallbackWarning());
  if (flags.json) context.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else context.stdout.write(results + (flags.quiet ? '' : verdict + formatSummary(summary)));
}

/** Exit code of a finished run: 1 when something is wrong (SPEC §4). */
export function exitCodeOf(summary: SyncSummary, problems = false): number {
  return summary.errors.length > 0 || problems ? 1 : 0;
}
