/**
 * `npm run bench`: the performance contract of SPEC §7, measured against `md5sum` over the same files in
 * the same run. Generates the reference workload once into bench/cache/, warms the page cache, then runs
 * interleaved rounds (so drift in the machine's speed hits every figure alike) of:
 *   md5sum (find | xargs -0 -P<cores> md5sum), a cold sync (manifests and response.json restored first),
 *   a warm sync (nothing changed), the warm floor (warm-floor.cts: Node's start and the reads no warm run
 *   can skip), Node's start alone, sync --verify,
 * then hash throughput at 1…N workers. Prints a table and writes bench/results/<date>.json and .svg.
 *
 *   npm run bench -- [--scale 1] [--rounds 3] [--scales 1,10]
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateDataRoot } from '../demo/generate.js';
import { resolveDataRoot } from '../src/engine/root.js';
import { SyncSummarySchema } from '../src/engine/summary.js';
import { measureThroughput, medianOf, type ThroughputReport } from '../src/engine/throughput.js';
import { throughputChart } from './chart.js';

const here = dirname(fileURLToPath(import.meta.url));
const project = resolve(here, '../..');
const CLI = join(project, 'dist/src/cli/main.js');
const RSS_HOOK = join(project, 'dist/bench/rss-hook.js');
const WARM_FLOOR = join(project, 'dist/bench/warm-floor.cjs');

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    scales: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    cache: { type: 'string', default: join(project, 'bench/cache') },
  },
});
const rounds = Number(values.rounds);
const scales = (values.scales ?? values.scale!).split(',').map(Number);
const cores = availableParallelism();

interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

interface ScaleResult {
  scale: number;
  actors: number;
  files: number;
  bytes: number;
  md5sum: Figure;
  cold: Figure;
  warm: Figure;
  /** warm-floor.cts: the least a warm run can take in a fresh Node process. */
  warm_floor: Figure;
  /** `node -e 0`. */
  node_start: Figure;
  verify: Figure;
  ratios: {
    cold_vs_md5sum: number;
    warm_vs_cold: number;
    warm_floor_vs_cold: number;
    node_start_vs_cold: number;
    verify_vs_md5sum: number;
  };
  mb_per_second: { md5sum: number; cold: number; verify: number };
  peak_rss_mb: number;
  manifests_rewritten_by_warm_runs: number;
  throughput: ThroughputReport;
}

const figure = (runs: number[]): Figure => ({
  median: medianOf(runs),
  min: Math.min(...runs),
  max: Math.max(...runs),
  runs,
});

/** The workload for a scale, generated once; `meta/` keeps the pristine manifests and response.json files. */
async function workload(
  scale: number,
): Promise<{ root: string; meta: string; actors: number; bytes: number; files: number }> {
  const base = join(values.cache!, `scale-${scale}`);
  const root = join(base, 'root');
  const meta = join(base, 'meta');
  const info = join(base, 'workload.json');
  if (!existsSync(info)) {
    rmSync(base, { recursive: true, force: true });
    mkdirSync(base, { recursive: true });
    process.stderr.write(`generating ${289 * scale} actors × ~17 images of 150–500 KB into ${root}…\n`);
    const generated = await generateDataRoot(root, { actors: 289 * scale, minBytes: 150_000, maxBytes: 500_000 });
    cpSync(join(root, 'data/actor_manifests'), join(meta, 'actor_manifests'), {
      recursive: true,
      preserveTimestamps: true,
    });
    for (const actor of generated.actors) {
      const response = join(root, 'data/actors', actor.name, 'training_data/response.json');
      if (existsSync(response))
        cpSync(response, join(meta, 'legacy', actor.name, 'response.json'), { preserveTimestamps: true });
    }
    writeFileSync(
      info,
      JSON.stringify({ actors: generated.actors.length, bytes: generated.totalBytes, files: generated.totalImages }),
    );
  }
  return { root, meta, ...JSON.parse(readFileSync(info, 'utf8')) };
}

/** Puts back the manifests and response.json files as generated: the next sync is cold. */
function restore(root: string, meta: string): void {
  rmSync(join(root, 'data/actor_manifests'), { recursive: true, force: true });
  cpSync(join(meta, 'actor_manifests'), join(root, 'data/actor_manifests'), {
    recursive: true,
    preserveTimestamps: true,
  });
  const legacy = join(meta, 'legacy');
  for (const name of readdirSync(legacy)) {
    cpSync(join(legacy, name, 'response.json'), join(root, 'data/actors', name, 'training_data/response.json'), {
      preserveTimestamps: true,
    });
  }
}

function timedProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ seconds: number; stdout: string }> {
  return new Promise((done, fail) => {
    const start = performance.now();
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.on('error', fail);
    child.on('close', (code) => {
      const seconds = (performance.now() - start) / 1000;
      if (code !== 0 && code !== null) fail(new Error(`${command} ${args.join(' ')} exited ${code}`));
      else done({ seconds, stdout });
    });
  });
}

function md5sum(root: string): Promise<{ seconds: number }> {
  const find = `find ${JSON.stringify(join(root, 'data/actors'))} -type f \\( -name '*.png' -o -name '*.jpg' \\) -print0`;
  return timedProcess('sh', ['-c', `${find} | xargs -0 -P${cores} md5sum > /dev/null`]);
}

async function sync(
  root: string,
  extra: string[],
  rssFile: string,
): Promise<{ seconds: number; rewritten: number; rssKb: number }> {
  const run = await timedProcess(
    process.execPath,
    ['--import', RSS_HOOK, CLI, 'sync', '--root', root, '--json', '--quiet', ...extra],
    { BENCH_RSS_FILE: rssFile },
  );
  const summary = SyncSummarySchema.parse(JSON.parse(run.stdout));
  return {
    seconds: run.seconds,
    rewritten: summary.manifests.written + summary.manifests.created,
    rssKb: Number(readFileSync(rssFile, 'utf8')),
  };
}

async function measureScale(scale: number): Promise<ScaleResult> {
  const work = await workload(scale);
  const rssFile = join(mkdtempSync(join(tmpdir(), 'actor-sync-bench-')), 'rss');
  process.stderr.write(
    `scale ${scale}: ${work.files} files, ${(work.bytes / 1048576).toFixed(0)} MB; warming the page cache…\n`,
  );
  await md5sum(work.root);
  const times = {
    md5sum: [] as number[],
    cold: [] as number[],
    warm: [] as number[],
    floor: [] as number[],
    start: [] as number[],
    verify: [] as number[],
  };
  let peakKb = 0;
  let rewritten = 0;
  for (let round = 1; round <= rounds; round += 1) {
    process.stderr.write(`  round ${round}/${rounds}\n`);
    times.md5sum.push((await md5sum(work.root)).seconds);
    restore(work.root, work.meta);
    // Restoring wrote files: flush them so the cold run does not pay for this round's copying.
    spawnSync('sync');
    const cold = await sync(work.root, [], rssFile);
    times.cold.push(cold.seconds);
    const warm = await sync(work.root, [], rssFile);
    times.warm.push(warm.seconds);
    rewritten += warm.rewritten;
    times.floor.push((await timedProcess(process.execPath, [WARM_FLOOR, work.root])).seconds);
    times.start.push((await timedProcess(process.execPath, ['-e', '0'])).seconds);
    const verify = await sync(work.root, ['--verify'], rssFile);
    times.verify.push(verify.seconds);
    peakKb = Math.max(peakKb, cold.rssKb, warm.rssKb, verify.rssKb);
  }
  process.stderr.write('  hash throughput by worker count…\n');
  const data = await resolveDataRoot({ root: work.root });
  const workerCounts = [...new Set([1, 2, cores, cores + 1])].sort((a, b) => a - b);
  const throughput = await measureThroughput({ data, workers: workerCounts, rounds });
  const md5 = figure(times.md5sum);
  const cold = figure(times.cold);
  const warm = figure(times.warm);
  const floor = figure(times.floor);
  const start = figure(times.start);
  const verify = figure(times.verify);
  const mb = work.bytes / 1048576;
  return {
    scale,
    actors: work.actors,
    files: work.files,
    bytes: work.bytes,
    md5sum: md5,
    cold,
    warm,
    warm_floor: floor,
    node_start: start,
    verify,
    ratios: {
      cold_vs_md5sum: cold.median / md5.median,
      warm_vs_cold: warm.median / cold.median,
      warm_floor_vs_cold: floor.median / cold.median,
      node_start_vs_cold: start.median / cold.median,
      verify_vs_md5sum: verify.median / md5.median,
    },
    mb_per_second: { md5sum: mb / md5.median, cold: mb / cold.median, verify: mb / verify.median },
    peak_rss_mb: peakKb / 1024,
    manifests_rewritten_by_warm_runs: rewritten,
    throughput,
  };
}

function table(results: ScaleResult[]): string {
  const s = (f: Figure) => `${f.median.toFixed(2)} s (${f.min.toFixed(2)}–${f.max.toFixed(2)})`;
  const lines: string[] = [];
  for (const r of results) {
    lines.push(
      `scale ${r.scale}: ${r.actors} actors, ${r.files} images, ${(r.bytes / 1048576).toFixed(0)} MB; median (min–max) of ${rounds}`,
    );
    lines.push(`  md5sum -P${cores}      ${s(r.md5sum)}  ${r.mb_per_second.md5sum.toFixed(0)} MB/s`);
    lines.push(
      `  cold sync        ${s(r.cold)}  ${r.mb_per_second.cold.toFixed(0)} MB/s  ${r.ratios.cold_vs_md5sum.toFixed(2)} × md5sum`,
    );
    lines.push(
      `  warm sync        ${s(r.warm)}  ${(r.ratios.warm_vs_cold * 100).toFixed(1)} % of cold; manifests rewritten: ${r.manifests_rewritten_by_warm_runs}`,
    );
    lines.push(
      `  warm floor       ${s(r.warm_floor)}  ${(r.ratios.warm_floor_vs_cold * 100).toFixed(1)} % of cold: Node's start and the reads no warm run can skip`,
    );
    lines.push(`  node -e 0        ${s(r.node_start)}  ${(r.ratios.node_start_vs_cold * 100).toFixed(1)} % of cold`);
    lines.push(
      `  sync --verify    ${s(r.verify)}  ${r.mb_per_second.verify.toFixed(0)} MB/s  ${r.ratios.verify_vs_md5sum.toFixed(2)} × md5sum`,
    );
    lines.push(`  peak RSS         ${r.peak_rss_mb.toFixed(0)} MB (whole process, all threads)`);
    lines.push(
      `  hash throughput  ${r.throughput.runs.map((t) => `${t.workers}w ${t.mbPerSecond.toFixed(0)} MB/s (${t.ratioToMd5sum?.toFixed(2) ?? '-'}×)`).join(', ')}`,
    );
  }
  if (results.length > 1) {
    const [small, large] = [results[0]!, results[results.length - 1]!];
    lines.push(
      `growth: ${large.scale / small.scale}× the actors → ${(large.cold.median / small.cold.median).toFixed(2)}× the cold time`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const results: ScaleResult[] = [];
for (const scale of scales) results.push(await measureScale(scale));
const date = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
const out = join(project, 'bench/results');
mkdirSync(out, { recursive: true });
const machine = {
  cores,
  cpu: cpus()[0]?.model ?? 'unknown',
  memory_gb: Math.round(totalmem() / 2 ** 30),
  node: process.version,
};
writeFileSync(
  join(out, `${date}.json`),
  `${JSON.stringify({ date, machine, rounds, command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), results }, null, 2)}\n`,
);
const chart = throughputChart(
  results[0]!.throughput,
  `MD5 throughput by worker count (${results[0]!.files} images, ${cores} cores)`,
);
writeFileSync(join(out, `${date}.svg`), chart);
writeFileSync(join(out, 'latest.svg'), chart);
process.stdout.write(table(results));
process.stdout.write(`wrote bench/results/${date}.json and .svg\n`);
