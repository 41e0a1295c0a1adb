/**
 * `npm run bench:remote` (without `--latency`): `--remote` verification of 289 actors × ~17 small objects held by s3rver
 * (in-process, loopback), next to `rclone check --fast-list` over the same files and bucket when rclone is
 * installed (Debian package `rclone`), and the listing alone (list-only.ts). Reports the time (median of
 * rounds) and actor-sync's LIST count.
 *
 * Both sides do the same work: hash every local file and list the bucket. rclone compares a tree, so it is
 * given one that mirrors the bucket's layout (`<actor>/<file>`, symlinks to the training_data folders).
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateDataRoot } from '../demo/generate.js';
import { S3RVER_CREDENTIALS, startLocalS3 } from '../demo/s3rver.js';
import { createS3 } from '../src/s3/client.js';
import { parseS3Url } from '../src/shared/s3-url.js';
import { SyncSummarySchema } from '../src/engine/summary.js';
import { medianOf } from '../src/engine/throughput.js';
import { timed } from './timed.js';

const project = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(project, 'dist/src/cli/main.js');
const LIST_ONLY = join(project, 'dist/bench/list-only.js');
const BUCKET = 'story-boards-assets';
const PREFIX = 'system_actors/training_data';
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const rounds = Number(values.rounds);

process.noDeprecation = true;
const work = mkdtempSync(join(tmpdir(), 'actor-sync-bench-remote-'));
const generated = await generateDataRoot(join(work, 'root'), { legacyEvery: 0, seedActor0000: false });
const server = await startLocalS3([BUCKET]);
const env: NodeJS.ProcessEnv = {
  ...process.env,
  AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  AWS_REGION: 'us-west-1',
};

// Every image in S3, and every manifest naming its URL (as after a push).
process.stderr.write(`uploading ${generated.totalImages} objects to s3rver…\n`);
const s3 = createS3({ endpoint: server.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
const mirror = join(work, 'mirror');
mkdirSync(mirror);
await Promise.all(
  generated.actors.flatMap((actor) => {
    symlinkSync(join(generated.root, 'data/actors', actor.name, 'training_data'), join(mirror, actor.name));
    return actor.images.map((file) =>
      s3.run(() =>
        s3.client.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: `${PREFIX}/${actor.name}/${file}`,
            Body: readFileSync(join(generated.root, 'data/actors', actor.name, 'training_data', file)),
          }),
        ),
      ),
    );
  }),
);
s3.close();
for (const actor of generated.actors) {
  const urls = actor.images.map((f) => `https://${BUCKET}.s3.us-west-1.amazonaws.com/${PREFIX}/${actor.name}/${f}`);
  if (urls.some((u) => parseS3Url(u).filename === '')) throw new Error('bad URL');
  const dir = join(generated.root, 'data/actors', actor.name, 'training_data');
  writeFileSync(join(dir, 'response.json'), JSON.stringify({ output: { output: { s3_image_urls: urls } } }));
}

const s3flags = ['--endpoint', server.endpoint, '--force-path-style', '--json', '--quiet'];
const first = await timed(
  process.execPath,
  [CLI, 'sync', '--root', generated.root, '--keep-legacy', ...s3flags, '--remote'],
  env,
);
const summary = SyncSummarySchema.parse(JSON.parse(first.stdout));
if (summary.totals.synced !== generated.totalImages)
  throw new Error(`expected every image synced, got ${JSON.stringify(summary.totals)}`);

const hasRclone = spawnSync('rclone', ['version'], { stdio: 'ignore' }).status === 0;
const rcloneEnv = {
  RCLONE_CONFIG_BENCH_TYPE: 's3',
  RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
  RCLONE_CONFIG_BENCH_ENDPOINT: server.endpoint,
  RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
  RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
};
Object.assign(env, rcloneEnv);
// rclone's S3 backend cannot use a custom CA bundle over plain http; this bench talks to loopback only.
delete env.AWS_CA_BUNDLE;

const times = { verify: [] as number[], warm: [] as number[], list_only: [] as number[], rclone: [] as number[] };
let lists = 0;
for (let round = 0; round < rounds; round += 1) {
  const verify = await timed(
    process.execPath,
    [CLI, 'sync', '--root', generated.root, '--keep-legacy', '--verify', ...s3flags, '--remote'],
    env,
  );
  times.verify.push(verify.seconds);
  lists = SyncSummarySchema.parse(JSON.parse(verify.stdout)).s3_requests?.list ?? -1;
  times.warm.push(
    (
      await timed(
        process.execPath,
        [CLI, 'check', '--root', generated.root, '--keep-legacy', ...s3flags, '--remote'],
        env,
      )
    ).seconds,
  );
  const listed = await timed(process.execPath, [LIST_ONLY, server.endpoint, BUCKET, `${PREFIX}/`], env);
  if (listed.code !== 0) throw new Error(`list-only exited ${listed.code}: ${listed.stderr.slice(-1500)}`);
  times.list_only.push(listed.seconds);
  if (hasRclone) {
    const r = await timed(
      'rclone',
      [
        'check',
        mirror,
        `bench:${BUCKET}/${PREFIX}`,
        '--fast-list',
        '--copy-links',
        '--one-way',
        '--include',
        '*.{png,jpg}',
        '--checkers',
        '16',
      ],
      env,
    );
    if (r.code !== 0) throw new Error(`rclone check exited ${r.code}: ${r.stderr.slice(-1500)}`);
    times.rclone.push(r.seconds);
  }
}
await server.close();
rmSync(work, { recursive: true, force: true });

const line = (label: string, t: number[]) =>
  `  ${label.padEnd(52)} ${medianOf(t).toFixed(2)} s (${Math.min(...t).toFixed(2)}–${Math.max(...t).toFixed(2)})`;
const out = [
  `--remote verification: ${generated.actors.length} actors, ${generated.totalImages} objects (${(generated.totalBytes / 1048576).toFixed(1)} MB) in s3rver; median of ${rounds}`,
  line(`actor-sync sync --remote --verify (${lists} LIST requests)`, times.verify),
  line('actor-sync check --remote (hashes reused)', times.warm),
  line('the listing alone (Node, the AWS SDK, the same LISTs)', times.list_only),
  hasRclone
    ? line('rclone check --fast-list (hashes every file)', times.rclone)
    : '  rclone is not installed (apt-get install rclone): no comparison',
];
if (hasRclone) {
  out.push(
    `  ratio: sync --remote --verify / rclone = ${(medianOf(times.verify) / medianOf(times.rclone)).toFixed(2)}`,
  );
  out.push(`  ratio: the listing alone / rclone = ${(medianOf(times.list_only) / medianOf(times.rclone)).toFixed(2)}`);
}
const date = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
writeFileSync(
  join(project, 'bench/results', `remote-${date}.json`),
  `${JSON.stringify({ date, rounds, objects: generated.totalImages, list_requests: lists, seconds: times }, null, 2)}\n`,
);
process.stdout.write(`${out.join('\n')}\nwrote bench/results/remote-${date}.json\n`);
