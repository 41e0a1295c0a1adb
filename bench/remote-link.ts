/**
 * `npm run bench:remote -- --latency 40 [--page-ms 20] [--scales 1,10] [--rounds 3]`: remote verification
 * over a modelled link. The bucket is fake-s3.ts (every request waits `--latency` ms, every listing page
 * `--page-ms` more), so what is measured is the number of round trips and how many run at once, not
 * s3rver's folder walk. In the same run and against the same endpoint, per scale (289 actors × ~17 images
 * each):
 *
 *   actor-sync sync --remote (hashes reused, as every night after the first), the same with no sync cache
 *   (a new machine: URLs read from the manifests) and with --verify (rehashes),
 *   rclone check --fast-list (one listing of the prefix, page after page) and plain rclone check (one
 *   listing per folder, 8 checkers), both as Debian's rclone runs them by default,
 *   and 4 shards, `sync --remote --shard K/4`, one after another: requests and time for each.
 *
 * Requests are counted at the endpoint by kind. rclone hashes every local file on each run (it keeps no
 * cache), which is part of its time.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateDataRoot, type GeneratedRoot } from '../demo/generate.js';
import { SyncSummarySchema } from '../src/engine/summary.js';
import { medianOf } from '../src/engine/throughput.js';
import { startFakeS3, type FakeObject, type FakeS3 } from './fake-s3.js';
import { timed, type Timed } from './timed.js';

const project = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(project, 'dist/src/cli/main.js');
const BUCKET = 'story-boards-assets';
const PREFIX = 'system_actors/training_data';

const { values } = parseArgs({
  options: {
    latency: { type: 'string', default: '40' },
    'page-ms': { type: 'string', default: '20' },
    scales: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
  },
});
const latencyMs = Number(values.latency);
const pageMs = Number(values['page-ms']);
const rounds = Number(values.rounds);
const scales = values.scales.split(',').map(Number);
const hasRclone = spawnSync('rclone', ['version'], { stdio: 'ignore' }).status === 0;

/** Every image of `generated` as an object under PREFIX, and each actor's legacy file naming its URLs. */
function publish(generated: GeneratedRoot): FakeObject[] {
  const objects: FakeObject[] = [];
  for (const actor of generated.actors) {
    const dir = join(generated.root, 'data/actors', actor.name, 'training_data');
    for (const file of actor.images) {
      const bytes = readFileSync(join(dir, file));
      objects.push({
        key: `${PREFIX}/${actor.name}/${file}`,
        size: bytes.length,
        md5: createHash('md5').update(bytes).digest('hex'),
      });
    }
    const urls = actor.images.map((f) => `https://${BUCKET}.s3.us-west-1.amazonaws.com/${PREFIX}/${actor.name}/${f}`);
    writeFileSync(join(dir, 'response.json'), JSON.stringify({ output: { output: { s3_image_urls: urls } } }));
  }
  return objects;
}

interface Row {
  label: string;
  seconds: number[];
  lists: number;
  heads: number;
}

/** Runs `command` `times` times against `fake`; its median time and the requests of its last run. */
async function measure(
  fake: FakeS3,
  label: string,
  times: number,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv | ((round: number) => NodeJS.ProcessEnv),
  check: (run: Timed) => void,
): Promise<Row> {
  const row: Row = { label, seconds: [], lists: 0, heads: 0 };
  for (let round = 0; round < times; round += 1) {
    fake.reset();
    const run = await timed(command, args, typeof env === 'function' ? env(round) : env);
    check(run);
    row.seconds.push(run.seconds);
    row.lists = fake.counts.list;
    row.heads = fake.counts.head;
  }
  return row;
}

function syncedEverything(expected: number) {
  return (run: Timed) => {
    if (run.code !== 0) throw new Error(`exited ${run.code}: ${run.stderr.slice(-1500)}`);
    const totals = SyncSummarySchema.parse(JSON.parse(run.stdout)).totals;
    if (totals.synced !== expected) throw new Error(`expected ${expected} synced, got ${JSON.stringify(totals)}`);
  };
}

function rcloneSucceeded(run: Timed): void {
  if (run.code !== 0) throw new Error(`rclone check exited ${run.code}: ${run.stderr.slice(-1500)}`);
}

async function benchScale(
  scale: number,
  work: string,
): Promise<{ scale: number; objects: number; rows: Row[]; shards: Row[] }> {
  process.stderr.write(`scale ${scale}: generating ${289 * scale} actors…\n`);
  const generated = await generateDataRoot(join(work, `root-${scale}`), {
    actors: 289 * scale,
    legacyEvery: 0,
    seedActor0000: false,
  });
  const objects = publish(generated);
  const fake = await startFakeS3(BUCKET, objects, { latencyMs, pageMs });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_REGION: 'us-west-1',
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCH_ENDPOINT: fake.endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: 'bench',
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: 'bench',
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
  };
  // rclone's S3 backend cannot use a custom CA bundle over plain http; this bench talks to loopback only.
  delete env.AWS_CA_BUNDLE;
  const s3flags = [
    '--root',
    generated.root,
    '--endpoint',
    fake.endpoint,
    '--force-path-style',
    '--json',
    '--quiet',
    '--remote',
  ];
  // The first run hashes everything, records the URLs and retires the response.json files; what is
  // measured is every night after it.
  syncedEverything(objects.length)(await timed(process.execPath, [CLI, 'sync', ...s3flags], env));

  const mirror = join(work, `mirror-${scale}`);
  mkdirSync(mirror);
  for (const actor of generated.actors)
    symlinkSync(join(generated.root, 'data/actors', actor.name, 'training_data'), join(mirror, actor.name));
  const rclone = [
    'check',
    mirror,
    `bench:${BUCKET}/${PREFIX}`,
    '--one-way',
    '--copy-links',
    '--include',
    '*.{png,jpg}',
  ];

  const rows: Row[] = [];
  rows.push(
    await measure(
      fake,
      'actor-sync sync --remote',
      rounds,
      process.execPath,
      [CLI, 'sync', ...s3flags],
      env,
      syncedEverything(objects.length),
    ),
  );
  // No sync cache (a new machine, or the cache cleared): each actor's URLs come from its manifest, read by a
  // worker, and the first URL's guess is the only listing started early.
  const uncached = (round: number) => ({ ...env, XDG_CACHE_HOME: join(work, `no-cache-${scale}-${round}`) });
  rows.push(
    await measure(
      fake,
      'actor-sync sync --remote, no sync cache',
      rounds,
      process.execPath,
      [CLI, 'sync', ...s3flags],
      uncached,
      syncedEverything(objects.length),
    ),
  );
  rows.push(
    await measure(
      fake,
      'actor-sync sync --remote --verify',
      rounds,
      process.execPath,
      [CLI, 'sync', '--verify', ...s3flags],
      env,
      syncedEverything(objects.length),
    ),
  );
  if (hasRclone) {
    rows.push(
      await measure(
        fake,
        'rclone check --fast-list',
        rounds,
        'rclone',
        [...rclone, '--fast-list'],
        env,
        rcloneSucceeded,
      ),
    );
    rows.push(await measure(fake, 'rclone check', rounds, 'rclone', rclone, env, rcloneSucceeded));
  }
  const shards: Row[] = [];
  for (let k = 1; k <= 4; k += 1) {
    shards.push(
      await measure(
        fake,
        `sync --remote --shard ${k}/4`,
        1,
        process.execPath,
        [CLI, 'sync', ...s3flags, '--shard', `${k}/4`],
        env,
        (run) => {
          if (run.code !== 0) throw new Error(`shard ${k}/4 exited ${run.code}: ${run.stderr.slice(-1500)}`);
        },
      ),
    );
  }
  await fake.close();
  return { scale, objects: objects.length, rows, shards };
}

function report(result: Awaited<ReturnType<typeof benchScale>>): string[] {
  const fastList = result.rows.find((r) => r.label === 'rclone check --fast-list');
  const lines = [
    `scale ${result.scale}: ${result.objects} objects; ${latencyMs} ms a request, ${pageMs} ms more a listing page; median of ${rounds}`,
  ];
  lines.push(
    `  ${'command'.padEnd(40)} ${'time'.padStart(8)} ${'LIST'.padStart(6)} ${'HEAD'.padStart(6)}   time / --fast-list`,
  );
  for (const row of result.rows) {
    const seconds = medianOf(row.seconds);
    const ratio = fastList ? (seconds / medianOf(fastList.seconds)).toFixed(2) : '–';
    lines.push(
      `  ${row.label.padEnd(40)} ${seconds.toFixed(2).padStart(6)} s ${String(row.lists).padStart(6)} ${String(row.heads).padStart(6)}   ${ratio}`,
    );
  }
  if (!hasRclone) lines.push('  rclone is not installed (apt-get install rclone): no comparison');
  const shardLists = result.shards.reduce((sum, row) => sum + row.lists, 0);
  const whole = result.rows[0]!.lists;
  for (const row of result.shards)
    lines.push(
      `  ${row.label.padEnd(40)} ${row.seconds[0]!.toFixed(2).padStart(6)} s ${String(row.lists).padStart(6)} ${String(row.heads).padStart(6)}`,
    );
  lines.push(
    `  4 shards together: ${shardLists} LIST requests = ${(shardLists / whole).toFixed(2)} × one unsharded run's ${whole}`,
  );
  return lines;
}

process.noDeprecation = true;
const work = mkdtempSync(join(tmpdir(), 'actor-sync-bench-link-'));
try {
  const results = [];
  for (const scale of scales) results.push(await benchScale(scale, work));
  const date = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
  const file = `remote-link-${date}.json`;
  writeFileSync(
    join(project, 'bench/results', file),
    `${JSON.stringify({ date, latencyMs, pageMs, rounds, results }, null, 2)}\n`,
  );
  process.stdout.write(`${results.flatMap(report).join('\n')}\nwrote bench/results/${file}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
