/**
 * SPEC §3, invariants 5 and 6, and §4's exit codes, on real processes: SIGTERM/SIGINT during a `sync`
 * stop it cleanly (143/130, commits in flight finished, lock released, no temp file) and the next run
 * finishes the job without redoing the committed actors; a second run while one holds the lock fails at
 * once (exit 2), or waits with `--wait`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDataRoot, type GeneratedRoot } from '../demo/generate.js';
import { SyncSummarySchema, type SyncSummary } from '../src/engine/summary.js';
import {
  copyRoot,
  leftovers,
  LOCK_NAME,
  manifestsDirOf,
  pollUntil,
  readManifests,
  runCli,
  startCli,
  watchCommits,
  type CliResult,
} from './helpers/cli.js';
import { holdLock } from './helpers/lock.js';
import { startFaultProxy } from './helpers/s3.js';
import { S3_ENV } from './helpers/s3-cli.js';

const ACTORS = 60;
const SYNC = ['sync', '--json', '--workers', '2'];
/**
 * The timeout of a test that runs the CLI over the whole root two or three times: each run takes seconds, and
 * tens of seconds on a loaded machine. Only a hang reaches it; the waits inside a test leave the bound to it.
 */
const RUNS_TIMEOUT_MS = 5 * 60_000;
/** Preloaded into a run, stops it (SIGSTOP) the moment its first manifest is renamed into place. */
const STOP_AFTER_FIRST_COMMIT = new URL('./fixtures/signals/stop-after-first-commit.mjs', import.meta.url).href;

let work: string;
let pristine: GeneratedRoot;
let copies = 0;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'actor-sync-signals-'));
  // 20–200 KB images (about 115 MB): the run is still hashing when its first manifest is committed.
  pristine = await generateDataRoot(join(work, 'pristine'), { actors: ACTORS, minBytes: 20_000, maxBytes: 200_000 });
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function freshCopy(): string {
  return copyRoot(pristine.root, join(work, `copy-${copies++}`));
}

function summaryOf(result: CliResult): SyncSummary {
  return SyncSummarySchema.parse(JSON.parse(result.stdout));
}

/** True while the process `pid` is stopped (Linux: state T in /proc/PID/stat, after the command name). */
function isStopped(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
}

/** The clean state every finished run leaves: no temp file, no lock, every manifest valid JSON. */
function expectCleanManifests(manifests: string): Map<string, any> {
  expect(leftovers(manifests)).toEqual([]);
  expect(existsSync(join(manifests, LOCK_NAME)), 'the lock folder is gone').toBe(false);
  expect(existsSync(join(manifests, '..', 'actors', LOCK_NAME)), "the actors folder's lock is gone").toBe(false);
  return readManifests(manifests);
}

describe('an interrupted sync', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)(
    '%s: exits %i after finishing its commits in flight; the next run does only the rest',
    async (signal, code) => {
      const root = freshCopy();
      const manifests = manifestsDirOf(root);

      // The run stops itself the moment its first manifest is renamed into place (the preloaded fixture) and is
      // signalled there: demonstrably mid-way, however loaded the machine, since it cannot get further until
      // SIGCONT, and then sees the signal within an event-loop turn, long before its last actor is dispatched.
      const run = startCli([...SYNC, '--root', root], {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${STOP_AFTER_FIRST_COMMIT}`,
      });
      // No deadline of its own: the run either stops (the fixture) or exits (then this rejects at once).
      await pollUntil('the run to stop after its first commit', () => isStopped(run.child.pid!), {
        child: run.child,
        timeoutMs: RUNS_TIMEOUT_MS,
      });
      run.child.kill(signal);
      run.child.kill('SIGCONT');
      const first = await run.done;
      expect(first.signal).toBeNull();
      expect(first.code, first.stderr).toBe(code);
      expect(first.stderr).toContain(signal);

      const interrupted = summaryOf(first);
      expect(interrupted.interrupted).toBe(true);
      expect(interrupted.errors).toEqual([]);
      expect(interrupted.actors.not_run, 'the signal came while actors were still to be dispatched').toBeGreaterThan(0);

      // Generated manifests have no training_data and ~1 in 20 actors has none: a manifest with
      // training_data is one this run committed.
      const afterSignal = expectCleanManifests(manifests);
      const committed = new Set(
        pristine.actors
          .filter((a) => afterSignal.get(`${a.id}_manifest.json`)?.training_data !== undefined)
          .map((a) => a.id),
      );
      const done = interrupted.manifests.written + interrupted.manifests.created;
      expect(committed.size).toBe(done);
      expect(done).toBeLessThan(ACTORS);

      // No --wait: the lock must already be free.
      const second = await runCli([...SYNC, '--root', root]);
      expect(second.code, second.stderr).toBe(0);
      const rest = summaryOf(second);
      expect(rest.interrupted).toBe(false);
      expect(rest.errors).toEqual([]);
      expect(rest.manifests.unchanged).toBe(done);
      expect(rest.manifests.written + rest.manifests.created).toBe(ACTORS - done);
      // No repeated work: only the actors not committed before are hashed; the others' hashes are reused.
      const imagesOf = (pick: (id: string) => boolean) =>
        pristine.actors.filter((a) => pick(a.id)).reduce((sum, a) => sum + a.images.length, 0);
      expect(rest.files_hashed).toBe(imagesOf((id) => !committed.has(id)));
      expect(rest.hashes_reused).toBe(imagesOf((id) => committed.has(id)));

      const final = expectCleanManifests(manifests);
      expect(final.size).toBe(ACTORS);
      for (const [name, manifest] of final) expect(manifest.training_data, name).toBeInstanceOf(Array);
      rmSync(root, { recursive: true, force: true });
    },
    RUNS_TIMEOUT_MS,
  );
});

describe('a second signal', () => {
  // The run is held where it cannot finish on its own: in its S3 check (`--remote`), against a proxy that
  // never answers (the client's timeout is 30 s). So the second signal meets a live run, whatever the load,
  // and only the second-signal path can end it.
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s twice while the run waits on S3: the first says it finishes its commits, the second stops it at once by the signal itself',
    async (signal) => {
      const root = freshCopy();
      const manifests = manifestsDirOf(root);
      const s3 = await startFaultProxy('http://127.0.0.1:9');
      s3.inject('stall', Infinity);
      const run = startCli(
        [...SYNC, '--remote', '--endpoint', s3.endpoint, '--force-path-style', '--root', root],
        S3_ENV,
      );
      let stderr = '';
      run.child.stderr!.on('data', (chunk: string) => (stderr += chunk));
      // Past the lock (taken before S3 is asked), so the signal handlers are long installed.
      await pollUntil('the run to ask S3', () => s3.requests.length > 0, { child: run.child });
      expect(existsSync(join(root, 'data', 'actors', LOCK_NAME, 'owner.json')), 'the run holds its lock').toBe(true);
      run.child.kill(signal);
      await pollUntil('the first signal to be acknowledged', () => stderr.includes('again to stop at once'), {
        child: run.child,
      });
      expect(run.child.exitCode, 'the first signal did not end the run: it waits on S3').toBeNull();
      run.child.kill(signal);
      const first = await run.done;
      await s3.close();
      expect(first.signal, first.stderr).toBe(signal);
      expect(first.stderr).toContain(
        `actor-sync: ${signal}: finishing commits in flight, starting nothing new (again to stop at once)\n`,
      );
      expect(first.stderr).not.toMatch(/FATAL|\n\s+at /);
      expect(first.stdout, 'stopped at once: no summary').toBe('');
      // Stopped before any actor was assessed: nothing committed. The next run takes over the dead run's lock and finishes the job.
      for (const [name, manifest] of readManifests(manifests)) expect(manifest.training_data, name).toBeUndefined();
      const next = await runCli([...SYNC, '--root', root]);
      expect(next.code, next.stderr).toBe(0);
      const final = expectCleanManifests(manifests);
      expect(final.size).toBe(ACTORS);
      for (const [name, manifest] of final) expect(manifest.training_data, name).toBeInstanceOf(Array);
      rmSync(root, { recursive: true, force: true });
    },
  );

  it('SIGINT twice after a commit: stops by the signal itself, no fatal error; the next run converges', async () => {
    const signal = 'SIGINT';
    const root = freshCopy();
    const manifests = manifestsDirOf(root);
    let run: ReturnType<typeof startCli> | undefined;
    let signalled = false;
    // Two signals sent together may reach the process as one: the second goes once the first is seen.
    const stopWatching = watchCommits(manifests, () => {
      if (signalled) return;
      signalled = true;
      run!.child.stderr!.on('data', (chunk: Buffer | string) => {
        if (String(chunk).includes('again to stop at once')) run!.child.kill(signal);
      });
      run!.child.kill(signal);
    });
    let first: CliResult;
    try {
      run = startCli([...SYNC, '--root', root]);
      first = await run.done;
    } finally {
      stopWatching();
    }
    expect(signalled, 'a manifest was committed before the run ended').toBe(true);
    expect(first.stderr).toContain('again to stop at once');
    expect(first.signal, first.stderr).toBe(signal);
    expect(first.stderr).not.toMatch(/FATAL|\n\s+at /);
    // Killed mid-way: any manifest is whole (old or new); the next run finishes the job.
    for (const [name, manifest] of readManifests(manifests)) expect(manifest, name).toBeTypeOf('object');
    const next = await runCli([...SYNC, '--root', root]);
    expect(next.code, next.stderr).toBe(0);
    const final = expectCleanManifests(manifests);
    for (const [name, manifest] of final) expect(manifest.training_data, name).toBeInstanceOf(Array);
    rmSync(root, { recursive: true, force: true });
  });
});

describe('two runs at once', () => {
  it(
    'the second fails at once naming the lock and its holder; with --wait it waits, then succeeds',
    async () => {
      const root = freshCopy();
      const manifests = manifestsDirOf(root);

      // The first lock a run takes is the actors folder's (the data root's): held there, it is the one the
      // second run meets. Held by this test, not by a run it would have to freeze: it never goes stale.
      const holder = await holdLock(join(root, 'data', 'actors'));
      try {
        const second = await runCli([...SYNC, '--root', root]);
        expect(second.code, second.stderr).toBe(2);
        expect(second.stdout).toBe('');
        expect(second.stderr).toContain(join(root, 'data', 'actors', LOCK_NAME));
        expect(second.stderr).toContain(`pid ${holder.pid}`);

        const waiter = startCli([...SYNC, '--root', root, '--wait']);
        let waiting = '';
        waiter.child.stderr!.on('data', (chunk: string) => (waiting += chunk));
        // Released only once the waiter says it waits: on a loaded machine it may still be starting.
        await pollUntil('the waiter to say it waits', () => waiting.includes('waiting: '), {
          child: waiter.child,
          timeoutMs: RUNS_TIMEOUT_MS,
        });
        // A run started after the waiter still finds the lock held; the waiter has not given up meanwhile.
        const probe = await runCli([...SYNC, '--root', root]);
        expect(probe.code, probe.stderr).toBe(2);
        expect(waiter.child.exitCode).toBeNull();

        await holder.release();
        const waited = await waiter.done;
        expect(waited.code, waited.stderr).toBe(0);
        expect(waited.stderr).toContain(`waiting: another actor-sync run (pid ${holder.pid}`);
        // It ran once the lock was free, and did the whole job.
        const after = summaryOf(waited);
        expect(after.manifests.written + after.manifests.created).toBe(ACTORS);
        expect(after.errors).toEqual([]);
      } finally {
        await holder.release();
      }
      expectCleanManifests(manifests);
      rmSync(root, { recursive: true, force: true });
    },
    RUNS_TIMEOUT_MS,
  );
});
