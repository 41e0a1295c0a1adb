/**
 * SPEC §3, invariants 1, 2, 5 and 6: a `sync` killed with SIGKILL at any instant leaves every manifest
 * valid and every legacy URL somewhere, and the next run takes over the dead run's lock at once and ends
 * exactly where an uninterrupted run ends. Real processes on copies of one generated root.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDataRoot, type GeneratedRoot } from '../src/demo/generate.js';
import { SyncSummarySchema } from '../src/summary.js';
import { prng } from './helpers/crash.js';
import {
  comparable, copyRoot, imageMtimes, leftovers, LOCK_NAME, manifestsDirOf, readManifests, runCli, startCli, watchCommits, type CliResult,
} from './helpers/cli.js';

const ACTORS = 30;
const SYNC = ['sync', '--json', '--workers', '2'];

type Kill = { atFraction: number } | { afterCommits: number } | { onLockCreated: true };

// Stratified draws, so the instants cover a whole run instead of bunching up: one instant in each eighth
// of [0, 1.25) × an uninterrupted run's duration (from before the lock is taken to past the usual end,
// since a killed run's timing varies), and six kills right after the k-th manifest is renamed into place,
// k spread over 1…ACTORS-1. Plus the one instant timing alone almost never hits: right after the lock
// folder is made, before its owner.json is written.
const rng = prng(20251017);
const TIMED = 8;
const BY_COMMIT = 6;
const KILLS: Kill[] = [
  ...Array.from({ length: TIMED }, (_, i) => ({ atFraction: (1.25 * (i + rng())) / TIMED })),
  ...Array.from({ length: BY_COMMIT }, (_, j) => ({ afterCommits: 1 + Math.floor(((j + rng()) / BY_COMMIT) * (ACTORS - 1)) })),
  { onLockCreated: true },
];

function nameOf(kill: Kill): string {
  if ('atFraction' in kill) return `killed at ${(kill.atFraction * 100).toFixed(0)}% of an uninterrupted run's duration`;
  if ('afterCommits' in kill) return `killed right after manifest commit #${kill.afterCommits}`;
  return 'killed the moment the lock folder appears';
}

let work: string;
let pristine: GeneratedRoot;
let pristineMtimes: Map<string, bigint>;
let reference: Map<string, any>;
let uninterruptedMs: number;
let trials = 0;

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

describe('SIGKILL at random instants', () => {
  it.each(KILLS.map((kill) => [nameOf(kill), kill] as const))('%s: every manifest valid, no URL lost, the next run converges', async (_name, kill) => {
    const root = copyRoot(pristine.root, join(work, `trial-${trials++}`));
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
      const watcher = watch(manifests, (_event, name) => {
        if (name === LOCK_NAME) run?.child.kill('SIGKILL');
      });
      stopWatching = () => watcher.close();
    }
    run = startCli([...SYNC, '--root', root]);
    if ('atFraction' in kill) timer = setTimeout(() => run!.child.kill('SIGKILL'), Math.round(kill.atFraction * uninterruptedMs));
    let killed: CliResult;
    try {
      killed = await run.done;
    } finally {
      clearTimeout(timer);
      stopWatching();
    }
    // A late timed kill may find the run already finished; then it must have finished cleanly.
    if ('atFraction' in kill && killed.signal !== 'SIGKILL') expect(killed.code, killed.stderr).toBe(0);
    else expect(killed.signal).toBe('SIGKILL');

    // Invariant 1: whatever exists parses (readManifests throws naming a torn file).
    const afterKill = readManifests(manifests);
    if ('afterCommits' in kill) {
      expect([...afterKill.values()].filter((m) => m.training_data !== undefined).length).toBeGreaterThanOrEqual(kill.afterCommits);
    }
    for (const actor of pristine.actors.filter((a) => a.hasManifest)) {
      expect(afterKill.has(`${actor.id}_manifest.json`), `${actor.id}_manifest.json still exists`).toBe(true);
    }

    // Invariant 2: each legacy URL is still in its response.json (untouched) or in the manifest.
    for (const actor of pristine.actors.filter((a) => a.legacyUrls.length > 0)) {
      const response = responsePath(root, actor.name);
      if (existsSync(response)) {
        expect(readFileSync(response).equals(readFileSync(responsePath(pristine.root, actor.name))), `${response} is untouched`).toBe(true);
      } else {
        const manifest = afterKill.get(`${actor.id}_manifest.json`);
        const held = new Set((manifest?.training_data ?? []).map((e: any) => e.s3_url));
        expect(actor.legacyUrls.filter((url) => !held.has(url)), `${actor.name}: URLs neither in response.json nor in the manifest`).toEqual([]);
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
    for (const actor of pristine.actors) expect(existsSync(responsePath(root, actor.name)), `${actor.name}/response.json retired`).toBe(false);

    rmSync(root, { recursive: true, force: true });
  });
});
