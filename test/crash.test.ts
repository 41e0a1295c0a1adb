/**
 * SPEC §3, invariants 1, 2, 5 and 6: a `sync` killed with SIGKILL at any instant leaves every manifest
 * valid and every legacy URL somewhere, and the next run takes over the dead run's lock at once and ends
 * exactly where an uninterrupted run ends. Real processes on copies of one generated root.
 */
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  utimesSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDataRoot, type GeneratedRoot } from '../demo/generate.js';
import { isTempFileName } from '../src/manifest/commit.js';
import { SyncSummarySchema } from '../src/engine/summary.js';
import { prng } from './helpers/crash.js';
import { leaveStaleTemp } from './helpers/root.js';
import {
  comparable,
  copyRoot,
  imageMtimes,
  leftovers,
  LOCK_NAME,
  manifestsDirOf,
  readManifests,
  runCli,
  startCli,
  watchCommits,
  type CliResult,
} from './helpers/cli.js';

const ACTORS = 30;
const SYNC = ['sync', '--json', '--workers', '2'];

type Kill = { atFraction: number } | { afterCommits: number } | { onLockCreated: true };

// Stratified draws, so the instants cover a whole run instead of bunching up: one instant in each eighth
// of an uninterrupted run's duration (a run that finishes before its instant is run again, killed at half
// the instant: a kill that never lands proves nothing), and six kills right after the k-th manifest is
// renamed into place, k spread over 1…ACTORS-1. Plus the one instant timing alone almost never hits: as
// the lock's folder is being built under its temp name, before it is renamed into place.
const rng = prng(20251017);
const TIMED = 8;
const BY_COMMIT = 6;
/** Runs of a timed trial, each killed at half the instant of the one before, until a kill lands. */
const TIMED_ATTEMPTS = 4;
const KILLS: Kill[] = [
  ...Array.from({ length: TIMED }, (_, i) => ({ atFraction: (i + rng()) / TIMED })),
  ...Array.from({ length: BY_COMMIT }, (_, j) => ({
    afterCommits: 1 + Math.floor(((j + rng()) / BY_COMMIT) * (ACTORS - 1)),
  })),
  { onLockCreated: true },
];

function nameOf(kill: Kill): string {
  if ('atFraction' in kill)
    return `killed at ${(kill.atFraction * 100).toFixed(0)}% of an uninterrupted run's duration`;
  if ('afterCommits' in kill) return `killed right after manifest commit #${kill.afterCommits}`;
  return "killed the moment the lock's folder is made under its temp name";
}

let work: string;
let pristine: GeneratedRoot;
let pristineMtimes: Map<string, bigint>;
let reference: Map<string, any>;
let uninterruptedMs: number;
let trials = 0;
/** What the kills did, reported (and checked) after the trials. */
const tally = { killed: 0, timedRetries: 0, withTempFile: 0, withHalfBuiltLock: 0 };
const halfBuiltLock = (name: string) => name.startsWith(`${LOCK_NAME}.`) && name.endsWith('.tmp');

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'actor-sync-crash-'));
  // 20–200 KB images: about 55 MB, so a run lasts long enough to be killed at many different points.
  pristine = await generateDataRoot(join(work, 'pristine'), { actors: ACTORS, minBytes: 20_000, maxBytes: 200_000 });
  pristineMtimes = imageMtimes(pristine.root);

  const root = copyRoot(pristine.root, join(work, 'reference'));
  const started = performance.now();
  const result = await runCli([...SYNC, '--root', root]);
  uninterruptedMs = performance.now() - started;
  expect(result.code, result.stderr).toBe(0);
  const summary = SyncSummarySchema.parse(JSON.parse(result.stdout));
  expect(summary.errors).toEqual([]);
  expect(summary.manifests.written + summary.manifests.created).toBe(ACTORS);
  reference = readManifests(manifestsDirOf(root));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function responsePath(root: string, name: string): string {
  return join(root, 'data', 'actors', name, 'training_data', 'response.json');
}

describe('the reference: one uninterrupted run on a copy of the pristine root', () => {
  it('a copy keeps every image mtime to the nanosecond (so modified_* fields can be compared across copies)', () => {
    const copy = copyRoot(pristine.root, join(work, 'mtime-check'));
    expect(pristineMtimes.size).toBe(pristine.totalImages);
    expect(imageMtimes(copy)).toEqual(pristineMtimes);
  });

  it('commits a manifest for every actor, holding every legacy URL, and retires every response.json', () => {
    expect([...reference.keys()]).toHaveLength(ACTORS);
    const withLegacy = pristine.actors.filter((a) => a.legacyUrls.length > 0);
    expect(withLegacy.length).toBeGreaterThan(0);
    for (const actor of withLegacy) {
      const urls = new Set(reference.get(`${actor.id}_manifest.json`).training_data.map((e: any) => e.s3_url));
      for (const url of actor.legacyUrls) expect(urls.has(url), `${actor.name}: ${url}`).toBe(true);
      expect(existsSync(responsePath(join(work, 'reference'), actor.name))).toBe(false);
    }
  });
});

/** Runs `sync` on `root` and SIGKILLs it as `kill` says (a timed kill at `atFraction` of an uninterrupted run). */
async function killedRun(root: string, kill: Kill, atFraction: number): Promise<CliResult> {
  const manifests = manifestsDirOf(root);
  expect(imageMtimes(root)).toEqual(pristineMtimes);
  // The watcher is in place before the process starts, so no commit goes unseen.
  let run: ReturnType<typeof startCli> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopWatching = (): void => {};
  if ('afterCommits' in kill) {
    stopWatching = watchCommits(manifests, (count) => {
      if (count === kill.afterCommits) run?.child.kill('SIGKILL');
    });
  } else if ('onLockCreated' in kill) {
    // The first lock a run takes is its actors folder's, built as `<lock>.<token>.tmp` with its owner file.
    const watcher = watch(join(root, 'data', 'actors'), (_event, name) => {
      if (typeof name === 'string' && halfBuiltLock(name)) run?.child.kill('SIGKILL');
    });
    stopWatching = () => watcher.close();
  }
  run = startCli([...SYNC, '--root', root]);
  if ('atFraction' in kill)
    timer = setTimeout(() => run!.child.kill('SIGKILL'), Math.round(atFraction * uninterruptedMs));
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
    stopWatching();
  }
}

describe('SIGKILL at random instants', () => {
  it.each(KILLS.map((kill) => [nameOf(kill), kill] as const))(
    '%s: every manifest valid, no URL lost, the next run converges',
    async (_name, kill) => {
      // A timed kill that finds the run finished is tried again, earlier, on a fresh copy.
      let root = '';
      let killed: CliResult | undefined;
      for (let attempt = 0; attempt < ('atFraction' in kill ? TIMED_ATTEMPTS : 1); attempt++) {
        if (killed) {
          expect(killed.code, `a run the kill missed finished cleanly: ${killed.stderr}`).toBe(0);
          rmSync(root, { recursive: true, force: true });
          tally.timedRetries++;
        }
        root = copyRoot(pristine.root, join(work, `trial-${trials++}`));
        killed = await killedRun(root, kill, 'atFraction' in kill ? kill.atFraction / 2 ** attempt : 0);
        if (killed.signal === 'SIGKILL') break;
      }
      const manifests = manifestsDirOf(root);
      expect(killed!.signal, `the kill landed: ${killed!.stderr}`).toBe('SIGKILL');
      tally.killed++;
      if (leftovers(manifests).some(isTempFileName)) tally.withTempFile++;
      const halfBuilt = [join(root, 'data', 'actors'), manifests].flatMap((dir) =>
        readdirSync(dir).filter(halfBuiltLock),
      );
      if (halfBuilt.length > 0) tally.withHalfBuiltLock++;

      // Invariant 1: whatever exists parses (readManifests throws naming a torn file).
      const afterKill = readManifests(manifests);
      if ('afterCommits' in kill) {
        expect([...afterKill.values()].filter((m) => m.training_data !== undefined).length).toBeGreaterThanOrEqual(
          kill.afterCommits,
        );
      }
      for (const actor of pristine.actors.filter((a) => a.hasManifest)) {
        expect(afterKill.has(`${actor.id}_manifest.json`), `${actor.id}_manifest.json still exists`).toBe(true);
      }

      // Invariant 2: each legacy URL is still in its response.json (untouched) or in the manifest.
      for (const actor of pristine.actors.filter((a) => a.legacyUrls.length > 0)) {
        const response = responsePath(root, actor.name);
        if (existsSync(response)) {
          expect(
            readFileSync(response).equals(readFileSync(responsePath(pristine.root, actor.name))),
            `${response} is untouched`,
          ).toBe(true);
        } else {
          const manifest = afterKill.get(`${actor.id}_manifest.json`);
          const held = new Set((manifest?.training_data ?? []).map((e: any) => e.s3_url));
          expect(
            actor.legacyUrls.filter((url) => !held.has(url)),
            `${actor.name}: URLs neither in response.json nor in the manifest`,
          ).toEqual([]);
        }
      }

      // Invariants 5 and 6: no --wait, so a lock still counted as held would fail this run with exit 2. The
      // killed run's pid is gone, so its lock must be taken over at once, whatever instant it died at.
      const next = await runCli([...SYNC, '--root', root]);
      expect(next.code, next.stderr).toBe(0);
      expect(SyncSummarySchema.parse(JSON.parse(next.stdout)).errors).toEqual([]);
      expect(leftovers(manifests)).toEqual([]);
      expect(existsSync(join(manifests, LOCK_NAME))).toBe(false);
      expect(existsSync(join(root, 'data', 'actors', LOCK_NAME))).toBe(false);

      const final = readManifests(manifests);
      expect([...final.keys()]).toEqual([...reference.keys()]);
      for (const [name, manifest] of reference) expect(comparable(final.get(name)), name).toEqual(comparable(manifest));
      for (const actor of pristine.actors)
        expect(existsSync(responsePath(root, actor.name)), `${actor.name}/response.json retired`).toBe(false);

      rmSync(root, { recursive: true, force: true });
    },
  );
});

describe('the kills themselves', () => {
  it('every trial killed its run (a timed kill that missed was tried again, earlier); what they left is reported', () => {
    console.info(
      `crash trials: ${tally.killed} of ${KILLS.length} runs killed (${tally.timedRetries} timed runs finished before their kill and were run again); ` +
        `${tally.withTempFile} left a manifest temp file, ${tally.withHalfBuiltLock} a half-built lock folder`,
    );
    expect(tally.killed).toBe(KILLS.length);
  });
});

describe('what killed runs leave, planted before a real sync', () => {
  it("stale manifest temps and half-built or half-removed lock folders are removed, a user's look-alikes kept; the run converges", async () => {
    const root = copyRoot(pristine.root, join(work, 'planted'));
    const manifests = manifestsDirOf(root);
    const actors = join(root, 'data', 'actors');
    const [a, b] = pristine.actors as [(typeof pristine.actors)[0], (typeof pristine.actors)[0]];
    // Temps of a commit killed mid-write, in SPEC §3's names: ours, and write-file-atomic's own temp of one.
    await leaveStaleTemp(manifests, `${a.id}_manifest.json`);
    const wfa = await leaveStaleTemp(manifests, `${b.id}_manifest.json`);
    renameSync(wfa, `${wfa}.1234567`);
    // Lock folders of runs killed while building one (with or without its owner file yet) or removing one.
    // Without an owner, only age tells a killed run's folder from one a live run is making: an hour old.
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const dir of [actors, manifests]) {
      const noOwner = join(dir, `${LOCK_NAME}.${randomUUID()}.tmp`);
      mkdirSync(noOwner);
      utimesSync(noOwner, hourAgo, hourAgo);
      const withOwner = join(dir, `${LOCK_NAME}.${randomUUID()}.tmp`);
      mkdirSync(withOwner);
      writeFileSync(
        join(withOwner, 'owner.json'),
        JSON.stringify({
          pid: 2 ** 22 + 1,
          hostname: hostname(),
          started: new Date(0).toISOString(),
          token: randomUUID(),
        }),
      );
      const gone = join(dir, `${LOCK_NAME}.${randomUUID()}.gone`);
      mkdirSync(gone);
      utimesSync(gone, hourAgo, hourAgo);
    }
    // A user's files that only look like ours.
    const users = [
      'notes.json.1',
      `${a.id}_manifest.json.20251017`,
      'x.png.tmp',
      `${LOCK_NAME}.backup`,
      `.actor-sync-0-0123456789ab.${a.id}_manifest.json.tmp`,
    ];
    for (const name of users) writeFileSync(join(manifests, name), 'mine\n');
    expect(leftovers(manifests).filter((name) => !users.includes(name))).toHaveLength(2 + 3);

    const result = await runCli([...SYNC, '--root', root]);
    expect(result.code, result.stderr).toBe(0);
    expect(SyncSummarySchema.parse(JSON.parse(result.stdout)).errors).toEqual([]);
    expect(leftovers(manifests).sort()).toEqual([...users].sort());
    for (const name of users) expect(readFileSync(join(manifests, name), 'utf8'), name).toBe('mine\n');
    expect(readdirSync(actors).filter((name) => name.startsWith(LOCK_NAME))).toEqual([]);
    const final = readManifests(manifests);
    for (const [name, manifest] of reference) expect(comparable(final.get(name)), name).toEqual(comparable(manifest));
    rmSync(root, { recursive: true, force: true });
  });
});
