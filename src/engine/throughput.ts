/**
 * Hash throughput on a data root (the engine of `actor-sync bench`): the pool's MD5 rate at each worker
 * count, next to `md5sum` over the same files when it is installed. Reads only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { listActors, listImages, selectActors } from './discover.js';
import { createPool } from './pool.js';
import type { DataRoot } from './root.js';
import * as z from 'zod';

export interface ThroughputOptions {
  data: DataRoot;
  actors?: string[];
  /** Worker counts to measure, e.g. [1, 2, 4]. */
  workers: number[];
  /** Timed passes per setting; the median is reported. */
  rounds: number;
}

export interface Measurement {
  label: string;
  workers: number;
  seconds: number[];
  medianSeconds: number;
  mbPerSecond: number;
  filesPerSecond: number;
  /** This setting's time over md5sum's (lower is faster); null without md5sum. */
  ratioToMd5sum: number | null;
}

export interface ThroughputReport {
  files: number;
  bytes: number;
  md5sum: Measurement | null;
  runs: Measurement[];
}

/** Files hashed per pool task: an actor's worth, so messages stay small and every worker stays busy. */
const BATCH = 16;

export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputReport> {
  const files = await imagesOf(options.data, options.actors);
  const hasMd5sum = spawnSync('md5sum', ['--version'], { stdio: 'ignore' }).status === 0;
  let bytes = 0;
  // One untimed pass warms the page cache, so every timed pass reads from memory alike.
  await hashAll(files, Math.max(...options.workers), (size) => (bytes += size));

  const times = new Map<string, number[]>();
  const record = (label: string, seconds: number) => times.set(label, [...(times.get(label) ?? []), seconds]);
  // Interleaved rounds: drift in the machine's speed hits every setting alike.
  for (let round = 0; round < options.rounds; round += 1) {
    if (hasMd5sum) record('md5sum', await timed(() => md5sum(files)));
    for (const workers of options.workers) record(`workers=${workers}`, await timed(() => hashAll(files, workers)));
  }
  const measure = (label: string, workers: number): Measurement => {
    const seconds = times.get(label) ?? [];
    const median = medianOf(seconds);
    return {
      label,
      workers,
      seconds,
      medianSeconds: median,
      mbPerSecond: bytes / 1048576 / median,
      filesPerSecond: files.length / median,
      ratioToMd5sum: null,
    };
  };
  const md5 = hasMd5sum ? measure('md5sum', availableParallelism()) : null;
  const runs = options.workers.map((w) => measure(`workers=${w}`, w));
  if (md5) for (const run of runs) run.ratioToMd5sum = run.medianSeconds / md5.medianSeconds;
  return { files: files.length, bytes, md5sum: md5, runs };
}

async function imagesOf(data: DataRoot, selectors?: string[]): Promise<string[]> {
  const { actors } = await listActors(data);
  const chosen = selectActors(actors, selectors);
  const files: string[] = [];
  for (const actor of chosen) files.push(...(await listImages(actor, data)).images.map((image) => image.path));
  return files;
}

async function hashAll(files: string[], workers: number, onSize?: (bytes: number) => void): Promise<void> {
  const pool = createPool(workers);
  try {
    const batches: Promise<void>[] = [];
    for (let i = 0; i < files.length; i += BATCH) {
      const task = { files: files.slice(i, i + BATCH).map((path) => ({ path })), racyFromNs: null, verify: true };
      batches.push(
        pool.hash(task).then((results) => {
          for (const r of results) if (r.ok) onSize?.(r.size);
        }),
      );
    }
    await Promise.all(batches);
  } finally {
    await pool.destroy();
  }
}

/** `xargs -0 -P<cores> md5sum` over the same files: the machine's practical MD5 limit. */
function md5sum(files: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('xargs', ['-0', '-P', String(availableParallelism()), '-n', '64', 'md5sum'], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`md5sum exited ${code}`))));
    child.stdin.end(files.join('\0'));
  });
}

async function timed(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

export function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const MeasurementSchema = z.object({
  label: z.string(),
  workers: z.number().int(),
  seconds: z.array(z.number()),
  median_seconds: z.number(),
  mb_per_second: z.number(),
  files_per_second: z.number(),
  ratio_to_md5sum: z.number().nullable(),
});

/** `actor-sync bench --json`. */
export const BenchSummarySchema = z.object({
  command: z.literal('bench'),
  root: z.string(),
  files: z.number().int(),
  bytes: z.number().int(),
  md5sum: MeasurementSchema.nullable(),
  runs: z.array(MeasurementSchema),
  /** Which MD5 the runs hashed with: the WebAssembly lanes, or node:crypto where they did not load. */
  md5_engine: z.enum(['wasm-lanes', 'node:crypto']),
});
export type BenchSummary = z.infer<typeof BenchSummarySchema>;
