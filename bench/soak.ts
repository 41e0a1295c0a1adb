/**
 * `npm run soak`: crash trials at scale (SPEC §3, invariants 1, 2, 3 and 6). `test/crash.test.ts` runs
 * fifteen of these inside `npm test`; this runs as many as asked, outside it.
 *
 * Generates one data root (the pristine copy), syncs three fresh copies of it uninterrupted (the first is
 * the reference; all three must agree, and their median duration sets the kill window), then per trial:
 * copy the pristine root, start `sync`, SIGKILL it at a seeded-random instant (most trials: anywhere in
 * [0, 1.2) × an uninterrupted run; some: right after the k-th manifest rename, seen with fs.watch; a few:
 * the moment the lock folder appears), and check
 *   1. every manifest parses, and none that existed went missing;
 *   2. no URL is lost: each response.json is byte-identical to the pristine one, or gone with every one
 *      of its URLs in the actor's manifest;
 *   3. no image was touched (same files, same mtimes);
 *   4. the next run (no --wait) exits 0 and leaves no temp file and no lock;
 *   5. that run ends where the reference ends: same manifests (but for commit times and inodes), every
 *      response.json retired.
 * Prints a line every 20 trials, then `soak: N trials, V violations`, and writes
 * bench/results/soak-<date>.json. Exits 1 when any trial violated anything.
 *
 *   npm run soak -- [--trials 200] [--actors 40] [--seed 20251017] [--workers 2] [--keep]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { generateDataRoot, type GeneratedRoot } from '../demo/generate.js';
import { SyncSummarySchema } from '../src/engine/summary.js';
import { medianOf } from '../src/engine/throughput.js';
import {
  comparable,
  copyRoot,
  imageMtimes,
  leftovers,
  LOCK_NAME,
  manifestsDirOf,
  prng,
  readManifests,
  responsePathOf,
  watchCommits,
} from '../test/helpers/crash.js';

const here = dirname(fileURLToPath(import.meta.url));
const project = resolve(here, '../..');
const CLI = join(project, 'dist/src/cli/main.js');

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '200' },
    actors: { type: 'string', default: '40' },
    seed: { type: 'string', default: '20251017' },
    workers: { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
  },
});
const TRIALS = wholeNumber('--trials', values.trials!);
const ACTORS = wholeNumber('--actors', values.actors!);
const SEED = Number(values.seed);
const WORKERS = wholeNumber('--workers', values.workers!);
if (!Number.isSafeInteger(SEED)) fail(`--seed must be an integer, got "${values.seed}"`);
if (ACTORS < 2) fail('--actors must be at least 2 (a kill after the k-th commit needs k < actors)');
const SYNC = ['sync', '--json', '--workers', String(WORKERS)];
/** Timed kills fall in [0, WINDOW) × an uninterrupted run: past its usual end too, since a run's timing varies. */
const WINDOW = 1.2;
const REPORT_EVERY = 20;
const DETAILS_KEPT = 50;

function wholeNumber(flag: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) fail(`${flag} must be a whole number ≥ 1, got "${text}"`);
  return Number(text);
}

function fail(message: string): never {
  process.stderr.write(`soak: ${message}\n`);
  process.exit(2);
}

// --- one CLI process ------------------------------------------------------------------------------

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

interface Run {
  kill(): void;
  done: Promise<Outcome>;
}

function startSync(root: string): Run {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...SYNC, '--root', root], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<Outcome>((resolveDone, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) =>
      resolveDone({ code, signal, stdout, stderr, ms: performance.now() - started }),
    );
  });
  return { kill: () => child.kill('SIGKILL'), done };
}

// --- kills ----------------------------------------------------------------------------------------

type Kill = { at: 'time'; fraction: number } | { at: 'commit'; k: number } | { at: 'lock' };

/** 75 % timed, 20 % after the k-th commit, 5 % at the lock folder's appearance. */
function drawKill(rng: () => number): Kill {
  const kind = rng();
  if (kind < 0.75) return { at: 'time', fraction: WINDOW * rng() };
  if (kind < 0.95) return { at: 'commit', k: 1 + Math.floor(rng() * (ACTORS - 1)) };
  return { at: 'lock' };
}

function describeKill(kill: Kill): string {
  if (kill.at === 'time') return `SIGKILL at ${(kill.fraction * 100).toFixed(1)}% of an uninterrupted run`;
  if (kill.at === 'commit') return `SIGKILL right after manifest commit #${kill.k}`;
  return 'SIGKILL when the lock folder appears';
}

/** Starts a sync on `root` and SIGKILLs it as `kill` says; resolves when it has exited. */
async function killedRun(root: string, kill: Kill, uninterruptedMs: number): Promise<Outcome> {
  const manifests = manifestsDirOf(root);
  let run: Run | undefined;
  let stopWatching = (): void => {};
  // Watchers are in place before the process starts, so no commit goes unseen.
  if (kill.at === 'commit') {
    stopWatching = watchCommits(manifests, (count) => {
      if (count === kill.k) run?.kill();
    });
  } else if (kill.at === 'lock') {
    const watcher = watch(manifests, (_event, name) => {
      if (name === LOCK_NAME) run?.kill();
    });
    stopWatching = () => watcher.close();
  }
  run = startSync(root);
  const timer =
    kill.at === 'time' ? setTimeout(() => run!.kill(), Math.round(kill.fraction * uninterruptedMs)) : undefined;
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
    stopWatching();
  }
}

// --- the checks -----------------------------------------------------------------------------------

const PROPERTIES = {
  'manifests-parse': 'every manifest parses after the kill, and none went missing',
  'no-url-lost': 'each response.json untouched, or all its URLs in the manifest',
  'images-untouched': 'every image still there with its mtime',
  'clean-next-run': 'the next run exits 0 with no error, and leaves no temp file and no lock',
  converges: 'the recovered state equals an uninterrupted run',
} as const;
type Property = keyof typeof PROPERTIES;

interface Violation {
  trial: number;
  kill: string;
  property: Property;
  detail: string;
}

interface Pristine {
  generated: GeneratedRoot;
  manifests: Map<string, Buffer>;
  responses: Map<string, Buffer>;
  images: Map<string, bigint>;
}

/** What the kill left, for the coverage figures: did it land before, during or after the commits? */
interface StateAtKill {
  committed: number;
  retired: number;
  temps: number;
  lock: boolean;
}

function checkAfterKill(
  root: string,
  pristine: Pristine,
  violate: (property: Property, detail: string) => void,
): StateAtKill {
  const manifestsDir = manifestsDirOf(root);
  let manifests = new Map<string, any>();
  try {
    manifests = readManifests(manifestsDir);
  } catch (error) {
    violate('manifests-parse', (error as Error).message);
  }
  let committed = 0;
  for (const name of readdirSync(manifestsDir).filter((n) => n.endsWith('_manifest.json'))) {
    const before = pristine.manifests.get(name);
    if (!before?.equals(readFileSync(join(manifestsDir, name)))) committed += 1;
  }
  for (const name of pristine.manifests.keys()) {
    if (!existsSync(join(manifestsDir, name))) violate('manifests-parse', `${name} existed before the run and is gone`);
  }

  let retired = 0;
  for (const actor of pristine.generated.actors) {
    const before = pristine.responses.get(actor.name);
    if (!before) continue;
    const path = responsePathOf(root, actor.name);
    if (existsSync(path)) {
      if (!readFileSync(path).equals(before)) violate('no-url-lost', `${path} changed`);
      continue;
    }
    retired += 1;
    const held = new Set((manifests.get(`${actor.id}_manifest.json`)?.training_data ?? []).map((e: any) => e.s3_url));
    const lost = actor.legacyUrls.filter((url) => !held.has(url));
    if (lost.length > 0)
      violate(
        'no-url-lost',
        `${actor.name}: response.json is gone and its manifest lacks ${lost.length} of its URLs (${lost[0]}…)`,
      );
  }

  const images = imageMtimes(root);
  if (!isDeepStrictEqual(images, pristine.images)) {
    const changed = [...pristine.images].filter(([path, mtime]) => images.get(path) !== mtime).map(([path]) => path);
    violate('images-untouched', `${changed.length} images gone or touched (${changed[0] ?? 'new files appeared'})`);
  }
  return { committed, retired, temps: leftovers(manifestsDir).length, lock: existsSync(join(manifestsDir, LOCK_NAME)) };
}

function checkRecovered(
  root: string,
  next: Outcome,
  reference: Map<string, any>,
  pristine: Pristine,
  violate: (property: Property, detail: string) => void,
): void {
  const manifestsDir = manifestsDirOf(root);
  if (next.code !== 0)
    violate(
      'clean-next-run',
      `exit ${next.code ?? next.signal}: ${next.stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
  else {
    const summary = SyncSummarySchema.safeParse(
      (() => {
        try {
          return JSON.parse(next.stdout);
        } catch {
          return undefined;
        }
      })(),
    );
    if (!summary.success) violate('clean-next-run', `stdout is not the --json summary: ${next.stdout.slice(0, 200)}`);
    else if (summary.data.errors.length > 0) {
      const [first] = summary.data.errors;
      violate('clean-next-run', `${summary.data.errors.length} errors, first: ${first!.file}: ${first!.reason}`);
    }
  }
  const left = leftovers(manifestsDir);
  if (left.length > 0) violate('clean-next-run', `left in the manifests folder: ${left.join(', ')}`);
  if (existsSync(join(manifestsDir, LOCK_NAME))) violate('clean-next-run', 'the lock folder is still there');
  if (existsSync(join(manifestsDir, '..', 'actors', LOCK_NAME)))
    violate('clean-next-run', "the actors folder's lock is still there");

  let final: Map<string, any>;
  try {
    final = readManifests(manifestsDir);
  } catch (error) {
    violate('converges', (error as Error).message);
    return;
  }
  const names = [...final.keys()];
  const expected = [...reference.keys()];
  if (!isDeepStrictEqual(names, expected))
    violate('converges', `manifests ${names.length} ≠ the reference's ${expected.length}`);
  for (const [name, manifest] of reference) {
    if (final.has(name) && !isDeepStrictEqual(comparable(final.get(name)), comparable(manifest)))
      violate('converges', `${name} differs from the reference`);
  }
  for (const actor of pristine.generated.actors) {
    if (existsSync(responsePathOf(root, actor.name)))
      violate('converges', `${actor.name}/training_data/response.json not retired`);
  }
}

// --- the run --------------------------------------------------------------------------------------

function readPristine(generated: GeneratedRoot): Pristine {
  const dir = manifestsDirOf(generated.root);
  const manifests = new Map(
    readdirSync(dir)
      .filter((n) => n.endsWith('_manifest.json'))
      .map((n) => [n, readFileSync(join(dir, n))] as const),
  );
  const responses = new Map<string, Buffer>();
  for (const actor of generated.actors) {
    const path = responsePathOf(generated.root, actor.name);
    if (existsSync(path)) responses.set(actor.name, readFileSync(path));
  }
  return { generated, manifests, responses, images: imageMtimes(generated.root) };
}

const startedAt = performance.now();
const work = mkdtempSync(join(tmpdir(), 'actor-sync-soak-'));
// If the soak itself is interrupted, the temp folder goes with it (the children get the same signal).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (!values.keep) rmSync(work, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

// 20–200 KB images, as in test/crash.test.ts: long enough a run to be killed at many different points.
const generated = await generateDataRoot(join(work, 'pristine'), {
  actors: ACTORS,
  minBytes: 20_000,
  maxBytes: 200_000,
  seed: SEED,
});
const pristine = readPristine(generated);

const uninterrupted: number[] = [];
let reference: Map<string, any> | undefined;
for (let i = 0; i < 3; i += 1) {
  const root = copyRoot(generated.root, join(work, `reference-${i}`));
  const result = await startSync(root).done;
  if (result.code !== 0)
    fail(`an uninterrupted run failed (exit ${result.code ?? result.signal}): ${result.stderr.trim()}`);
  uninterrupted.push(result.ms);
  const manifests = readManifests(manifestsDirOf(root));
  if (reference === undefined) reference = manifests;
  else if (
    ![...reference].every(([name, m]) => isDeepStrictEqual(comparable(manifests.get(name)), comparable(m))) ||
    manifests.size !== reference.size
  ) {
    fail('two uninterrupted runs on copies of one root disagree; there is no reference to converge to');
  }
  rmSync(root, { recursive: true, force: true });
}
const uninterruptedMs = medianOf(uninterrupted);
process.stdout.write(
  `soak: ${ACTORS} actors, ${generated.totalImages} images, ${(generated.totalBytes / 1048576).toFixed(1)} MB; ` +
    `uninterrupted sync ${uninterruptedMs.toFixed(0)} ms (median of 3); ${TRIALS} trials, seed ${SEED}\n`,
);

const rng = prng(SEED);
const violations: Violation[] = [];
const byProperty = Object.fromEntries(Object.keys(PROPERTIES).map((p) => [p, 0])) as Record<Property, number>;
const kills = { timed: 0, after_commit: 0, at_lock: 0 };
const landed = { killed: 0, finished_first: 0 };
const atKill = {
  nothing_committed: 0,
  some_committed: 0,
  all_committed: 0,
  temp_file_present: 0,
  lock_present: 0,
  some_response_retired: 0,
};
let violatingTrials = 0;

for (let trial = 1; trial <= TRIALS; trial += 1) {
  const kill = drawKill(rng);
  kills[kill.at === 'time' ? 'timed' : kill.at === 'commit' ? 'after_commit' : 'at_lock'] += 1;
  let violated = false;
  const violate = (property: Property, detail: string): void => {
    violated = true;
    byProperty[property] += 1;
    violations.push({ trial, kill: describeKill(kill), property, detail });
  };

  const root = copyRoot(generated.root, join(work, 'trial'));
  const first = await killedRun(root, kill, uninterruptedMs);
  if (first.signal === 'SIGKILL') landed.killed += 1;
  else {
    landed.finished_first += 1;
    // The kill came too late (or its trigger never fired): then the run must have finished cleanly.
    if (first.code !== 0)
      violate(
        'clean-next-run',
        `the run that was to be killed exited ${first.code ?? first.signal} on its own: ${first.stderr.trim()}`,
      );
  }

  const state = checkAfterKill(root, pristine, violate);
  const total = pristine.generated.actors.length;
  if (state.committed === 0) atKill.nothing_committed += 1;
  else if (state.committed < total) atKill.some_committed += 1;
  else atKill.all_committed += 1;
  if (state.temps > 0) atKill.temp_file_present += 1;
  if (state.lock) atKill.lock_present += 1;
  if (state.retired > 0) atKill.some_response_retired += 1;

  const next = await startSync(root).done;
  checkRecovered(root, next, reference!, pristine, violate);
  if (violated) violatingTrials += 1;
  rmSync(root, { recursive: true, force: true });

  if (trial % REPORT_EVERY === 0 || trial === TRIALS) {
    const seconds = (performance.now() - startedAt) / 1000;
    process.stdout.write(
      `soak: ${trial}/${TRIALS} trials, ${violations.length} violations; ${landed.killed} killed, ${landed.finished_first} finished before the kill; ` +
        `at the kill: ${atKill.nothing_committed} before any commit, ${atKill.some_committed} mid-commits, ${atKill.all_committed} after all, ` +
        `${atKill.temp_file_present} with a temp file; ${seconds.toFixed(0)} s\n`,
    );
  }
}

const elapsed = (performance.now() - startedAt) / 1000;
for (const v of violations.slice(0, 10))
  process.stdout.write(`  trial ${v.trial} (${v.kill}): ${v.property}: ${v.detail}\n`);
process.stdout.write(`soak: ${TRIALS} trials, ${violations.length} violations\n`);

const date = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
const out = join(project, 'bench/results');
mkdirSync(out, { recursive: true });
const result = {
  date,
  command: `npm run soak -- ${process.argv.slice(2).join(' ')}`.trim(),
  machine: { node: process.version, cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown' },
  options: { trials: TRIALS, actors: ACTORS, seed: SEED, workers: WORKERS, window: WINDOW },
  workload: { actors: ACTORS, images: generated.totalImages, bytes: generated.totalBytes },
  uninterrupted_ms: { runs: uninterrupted.map(Math.round), median: Math.round(uninterruptedMs) },
  trials: TRIALS,
  violations: violations.length,
  trials_with_violations: violatingTrials,
  properties: PROPERTIES,
  by_property: byProperty,
  kills,
  landed,
  state_at_kill: atKill,
  elapsed_s: Math.round(elapsed * 10) / 10,
  violation_details: violations.slice(0, DETAILS_KEPT),
};
writeFileSync(join(out, `soak-${date}.json`), `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`wrote bench/results/soak-${date}.json (${elapsed.toFixed(0)} s)\n`);

if (values.keep) process.stdout.write(`kept ${work}\n`);
else rmSync(work, { recursive: true, force: true });
process.exitCode = violations.length > 0 ? 1 : 0;
