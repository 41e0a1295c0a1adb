/**
 * The hostile-input corpus (SPEC §3, invariants 2 and 7; §4's exit codes): one folder per case under
 * `test/fixtures/hostile/`, each with its expected outcome in `case.json` (the format is in that folder's
 * README). Each case runs the real CLI, `sync --root … --json`, on a fresh root holding the hostile actor
 * `0005_hostile` and a healthy control actor `0001_control`, and checks:
 *   - the exit code (1: an actor failed; 2: usage or configuration; 0: accepted);
 *   - a failure names the file and the reason, on stderr and in the --json document, and says the actor was
 *     left unchanged; no stack trace, no "unexpected failure";
 *   - nothing but what the outcome allows changed, byte for byte and mtime for mtime, inside the root or
 *     outside it (a failed actor's manifest and response.json are untouched);
 *   - the control actor is synced (unless the whole run is refused with exit 2);
 *   - no temp file and no lock are left in the manifests folder.
 * Parts that cannot be committed (FIFOs, sockets, symlinks, the 50 MB and deeply nested JSON, modes) are
 * made here, by the case's `make`.
 *
 * A case whose expected outcome src does not meet carries a `bug` in its case.json (none do now) and fails
 * here until src is fixed. A run that hangs is killed by the watchdog.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pLimit from 'p-limit';
import { describe, it, type ExpectStatic } from 'vitest';
import * as z from 'zod';
import { SyncSummarySchema, type SyncSummary } from '../src/engine/summary.js';
import { leftovers, LOCK_NAME } from './helpers/crash.js';
import { builtForUnprivileged, unprivileged } from './helpers/unprivileged.js';

const CLI = resolve(import.meta.dirname, '../dist/src/cli/main.js');
const CORPUS = resolve(import.meta.dirname, 'fixtures/hostile');
/**
 * Far beyond the second or so a two-actor run takes, even on a loaded two-core machine with another suite
 * beside it: only a hang reaches it.
 */
const WATCHDOG_MS = 60_000;
/**
 * Runs at once, each with two worker threads: one per core. The cases' own work (building roots, reading
 * trees) still overlaps, and a run's watchdog starts only once the run does.
 */
const runSlots = pLimit(2);
/** A case waits for the runs ahead of it (at most a few, each bounded by its watchdog), then runs its own. */
const CASE_TIMEOUT_MS = 4 * WATCHDOG_MS;

const HOSTILE = '0005_hostile';
const CONTROL = '0001_control';
const CONTROL_IMAGE = `${CONTROL}_0.png`;
const CONTROL_BYTES = Buffer.from('control image 0');
const CONTROL_URL = `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${CONTROL}/${CONTROL_IMAGE}`;
const DEFAULT_IMAGES = { [`${HOSTILE}_0.png`]: 'hostile image 0' };

// --- the case format (test/fixtures/hostile/README.md) --------------------------------------------

/** A file named (relative to the data root) and a regex its reason must match. */
const Problem = z.strictObject({ file: z.string(), reason: z.string() });

const Expected = z.discriminatedUnion('exit', [
  z.strictObject({
    exit: z.literal(0),
    entries: z.array(z.looseObject({ filename: z.string() })).nullable(),
    legacy: z.enum(['retired', 'none']),
    warnings: z.array(Problem).default([]),
  }),
  z.strictObject({ exit: z.literal(1), errors: z.array(Problem).min(1) }),
  z.strictObject({ exit: z.literal(2), usage: Problem }),
]);

const CaseSchema = z.strictObject({
  title: z.string(),
  /** A maker below, for what cannot be committed. */
  make: z.string().optional(),
  /** The hostile actor's images, name → content; default one image, `0005_hostile_0.png`. */
  images: z.record(z.string(), z.string()).optional(),
  /** Run as an unprivileged user (uid/gid 65534) when the tests run as root (root ignores file modes). */
  uid: z.literal('unprivileged').optional(),
  expect: Expected,
  /** What src does instead, while it does not meet `expect`. */
  bug: z.string().optional(),
});
type Case = z.infer<typeof CaseSchema>;

interface Layout {
  work: string;
  root: string;
  outside: string;
  actorsDir: string;
  manifestsDir: string;
  trainingDir: string;
  manifest: string;
}

type Maker = (at: Layout) => void | Promise<void> | { rootArg: string };

function mkfifo(path: string): void {
  const made = spawnSync('mkfifo', [path]);
  if (made.status !== 0) throw new Error(`mkfifo ${path} failed: ${made.stderr}`);
}

/** JSON nested `depth` lists deep: far beyond what JSON.stringify's recursion survives. */
function nested(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

const MAKERS: Record<string, Maker> = {
  'response-50mb': ({ trainingDir }) => {
    const url = `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${HOSTILE}/${HOSTILE}_0.png`;
    fs.writeFileSync(
      join(trainingDir, 'response.json'),
      Buffer.concat([
        Buffer.from('{"log": "'),
        Buffer.alloc(50 * 1024 * 1024, 'x'),
        Buffer.from(
          `", "output": {"output": {"actor_id": "${HOSTILE}", "s3_image_urls": ["${url}"]}, "status": "success"}}\n`,
        ),
      ]),
    );
  },
  'response-deep': ({ trainingDir }) => {
    const url = `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${HOSTILE}/${HOSTILE}_0.png`;
    fs.writeFileSync(
      join(trainingDir, 'response.json'),
      `{"trace": ${nested(100_000)}, "output": {"output": {"s3_image_urls": ["${url}"]}}}\n`,
    );
  },
  'manifest-deep': ({ manifest }) => {
    fs.writeFileSync(manifest, `{"character_id": "0005", "history": ${nested(100_000)}}\n`);
  },
  // Another actor's response.json, linked into this actor's folder: its URLs are not this actor's to take or retire.
  // (A copy the other actor never retires, so the link is never left dangling by the run itself.)
  'response-symlink-other-actor': ({ actorsDir, trainingDir }) => {
    const kept = join(actorsDir, CONTROL, 'training_data', 'old');
    fs.mkdirSync(kept);
    fs.copyFileSync(join(actorsDir, CONTROL, 'training_data', 'response.json'), join(kept, 'response.json'));
    fs.symlinkSync(`../../${CONTROL}/training_data/old/response.json`, join(trainingDir, 'response.json'));
  },
  'prompt-symlink-other-actor': ({ actorsDir, trainingDir }) => {
    fs.writeFileSync(
      join(actorsDir, CONTROL, 'training_data', 'prompt_metadata.json'),
      JSON.stringify({ images: { [CONTROL_IMAGE]: { s3_url: CONTROL_URL } } }),
    );
    fs.symlinkSync(`../../${CONTROL}/training_data/prompt_metadata.json`, join(trainingDir, 'prompt_metadata.json'));
  },
  'response-fifo': ({ trainingDir }) => mkfifo(join(trainingDir, 'response.json')),
  'prompt-fifo': ({ trainingDir }) => mkfifo(join(trainingDir, 'prompt_metadata.json')),
  'manifest-fifo': ({ manifest }) => mkfifo(manifest),
  'response-directory': ({ trainingDir }) => fs.mkdirSync(join(trainingDir, 'response.json')),
  'manifest-directory': ({ manifest }) => fs.mkdirSync(manifest),
  'response-symlink-out': ({ outside, trainingDir }) => {
    const target = join(outside, 'response.json');
    const url = `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${HOSTILE}/${HOSTILE}_0.png`;
    fs.writeFileSync(target, `${JSON.stringify({ output: { output: { s3_image_urls: [url] } } }, null, 2)}\n`);
    fs.symlinkSync(target, join(trainingDir, 'response.json'));
  },
  'manifest-symlink-out': ({ outside, manifest }) => {
    const target = join(outside, '0005_manifest.json');
    fs.writeFileSync(
      target,
      `${JSON.stringify({ character_id: '0005', note: 'a file outside the data root' }, null, 2)}\n`,
    );
    fs.symlinkSync(target, manifest);
  },
  'manifest-readonly': ({ manifest }) => fs.chmodSync(manifest, 0o444),
  'manifests-dir-readonly': ({ manifestsDir }) => fs.chmodSync(manifestsDir, 0o555),
  'image-fifo': ({ trainingDir }) => mkfifo(join(trainingDir, 'fifo.jpg')),
  'image-socket': async ({ work, trainingDir }) => {
    // Bound at a short path (a socket path has ~100 bytes at most), then renamed into place.
    const server = net.createServer();
    const short = join(work, 's');
    await new Promise<void>((done, failed) => server.once('error', failed).listen(short, done));
    fs.renameSync(short, join(trainingDir, 'socket.jpg'));
    await new Promise<void>((done) => server.close(() => done()));
  },
  'image-symlink-loops': ({ trainingDir }) => {
    fs.symlinkSync('loop.jpg', join(trainingDir, 'loop.jpg'));
    fs.symlinkSync('b.png', join(trainingDir, 'a.png'));
    fs.symlinkSync('a.png', join(trainingDir, 'b.png'));
  },
  'image-non-utf8-name': ({ trainingDir }) => {
    fs.writeFileSync(
      Buffer.concat([Buffer.from(`${trainingDir}/`), Buffer.from([0xff, 0xfe]), Buffer.from('.png')]),
      'not a UTF-8 name',
    );
  },
  'actor-non-utf8-name': ({ actorsDir }) => {
    const dir = Buffer.concat([Buffer.from(`${actorsDir}/0006_`), Buffer.from([0xff])]);
    fs.mkdirSync(Buffer.concat([dir, Buffer.from('/training_data')]), { recursive: true });
    fs.writeFileSync(
      Buffer.concat([dir, Buffer.from('/training_data/0006_0.png')]),
      'an image of an actor whose folder name is not UTF-8',
    );
  },
  'image-directory': ({ trainingDir }) => fs.mkdirSync(join(trainingDir, 'folder.png')),
  'root-is-file': ({ root }) => {
    const file = join(root, 'root-file');
    fs.writeFileSync(file, 'a file, not a data root\n');
    return { rootArg: file };
  },
  'actors-dir-is-file': ({ actorsDir }) => {
    fs.rmSync(actorsDir, { recursive: true });
    fs.writeFileSync(actorsDir, 'a file, not a folder\n');
  },
  'manifests-dir-is-file': ({ manifestsDir }) => {
    fs.rmSync(manifestsDir, { recursive: true });
    fs.writeFileSync(manifestsDir, 'a file, not a folder\n');
  },
  'training-data-is-file': ({ trainingDir }) => {
    fs.rmSync(trainingDir, { recursive: true });
    fs.writeFileSync(trainingDir, 'a file, not a folder\n');
  },
  'training-data-symlink-loop': ({ trainingDir }) => {
    fs.rmSync(trainingDir, { recursive: true });
    fs.symlinkSync('training_data', trainingDir);
  },
  'actor-dir-symlink-loop': ({ actorsDir }) => {
    fs.rmSync(join(actorsDir, HOSTILE), { recursive: true });
    fs.symlinkSync(HOSTILE, join(actorsDir, HOSTILE));
  },
  'training-dir-symlink-out': ({ outside, trainingDir }) => {
    const target = join(outside, 'training_data');
    fs.mkdirSync(target);
    fs.writeFileSync(join(target, 'secret.png'), 'an image outside the data root');
    fs.rmSync(trainingDir, { recursive: true });
    fs.symlinkSync(target, trainingDir);
  },
  'training-data-shared': ({ actorsDir }) => {
    fs.mkdirSync(join(actorsDir, '0006_twin'));
    fs.symlinkSync(join('..', HOSTILE, 'training_data'), join(actorsDir, '0006_twin', 'training_data'));
  },
  'manifest-shared': ({ actorsDir, manifestsDir }) => {
    fs.mkdirSync(join(actorsDir, '0006_twin', 'training_data'), { recursive: true });
    fs.writeFileSync(join(actorsDir, '0006_twin', 'training_data', '0006_twin_0.png'), 'twin image 0');
    fs.symlinkSync('0005_manifest.json', join(manifestsDir, '0006_manifest.json'));
  },
  'shared-id': ({ actorsDir }) => {
    fs.mkdirSync(join(actorsDir, '0005_twin', 'training_data'), { recursive: true });
    fs.writeFileSync(join(actorsDir, '0005_twin', 'training_data', '0005_twin_0.png'), 'twin image 0');
  },
};

// --- building a root and looking at it ------------------------------------------------------------

async function build(name: string, spec: Case): Promise<{ at: Layout; rootArg: string }> {
  const work = fs.mkdtempSync(join(tmpdir(), 'actor-sync-hostile-'));
  const root = join(work, 'root');
  const actorsDir = join(root, 'data', 'actors');
  const manifestsDir = join(root, 'data', 'actor_manifests');
  const trainingDir = join(actorsDir, HOSTILE, 'training_data');
  const at: Layout = {
    work,
    root,
    outside: join(work, 'outside'),
    actorsDir,
    manifestsDir,
    trainingDir,
    manifest: join(manifestsDir, '0005_manifest.json'),
  };

  fs.mkdirSync(at.outside);
  fs.writeFileSync(join(at.outside, 'sentinel.txt'), 'outside the data root\n');
  fs.mkdirSync(manifestsDir, { recursive: true });
  const controlDir = join(actorsDir, CONTROL, 'training_data');
  fs.mkdirSync(controlDir, { recursive: true });
  fs.writeFileSync(join(controlDir, CONTROL_IMAGE), CONTROL_BYTES);
  fs.writeFileSync(
    join(controlDir, 'response.json'),
    `${JSON.stringify({ output: { output: { actor_id: CONTROL, s3_image_urls: [CONTROL_URL] } } }, null, 2)}\n`,
  );

  fs.mkdirSync(trainingDir, { recursive: true });
  for (const [file, content] of Object.entries(spec.images ?? DEFAULT_IMAGES))
    fs.writeFileSync(join(trainingDir, file), content);
  const fixture = join(CORPUS, name);
  if (fs.existsSync(join(fixture, 'training_data')))
    fs.cpSync(join(fixture, 'training_data'), trainingDir, { recursive: true });
  if (fs.existsSync(join(fixture, 'manifest.json'))) fs.copyFileSync(join(fixture, 'manifest.json'), at.manifest);

  let rootArg = root;
  if (spec.make) {
    const maker = MAKERS[spec.make];
    if (!maker) throw new Error(`${name}/case.json: no maker "${spec.make}" in test/hostile.test.ts`);
    const made = await maker(at);
    if (made) rootArg = made.rootArg;
  }
  return { at, rootArg };
}

/** Removes a case's folder, whatever modes the case left. */
function removeWork(at: Layout): void {
  for (const dir of [at.manifestsDir, at.work]) {
    if (fs.lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) fs.chmodSync(dir, 0o755);
  }
  fs.rmSync(at.work, { recursive: true, force: true });
}

/** A name as bytes allow: UTF-8 when it is, else hex (a name that is not UTF-8 must still be told apart). */
function printable(name: Buffer): string {
  const text = name.toString('utf8');
  return Buffer.from(text).equals(name) ? text : `<${name.toString('hex')}>`;
}

/**
 * Everything under `dir`, relative path → what it is: a file's mode, MD5 and mtime in ns, a folder's mode,
 * a symlink's target; nothing is followed or opened but regular files. Names are read as bytes.
 */
function tree(dir: string): Map<string, string> {
  const result = new Map<string, string>();
  const walk = (path: Buffer, rel: string): void => {
    for (const name of fs.readdirSync(path, { encoding: 'buffer' })) {
      const child = Buffer.concat([path, Buffer.from('/'), name]);
      const key = rel === '' ? printable(name) : `${rel}/${printable(name)}`;
      const stats = fs.lstatSync(child, { bigint: true });
      const mode = (stats.mode & 0o7777n).toString(8);
      if (stats.isSymbolicLink()) result.set(key, `symlink → ${fs.readlinkSync(child, 'utf8')}`);
      else if (stats.isDirectory()) {
        result.set(key, `folder ${mode}`);
        walk(child, key);
      } else if (stats.isFile()) {
        result.set(
          key,
          `file ${mode} ${createHash('md5').update(fs.readFileSync(child)).digest('hex')} ${stats.mtimeNs}`,
        );
      } else result.set(key, stats.isFIFO() ? 'fifo' : stats.isSocket() ? 'socket' : 'special');
    }
  };
  walk(Buffer.from(dir), '');
  return result;
}

/** Paths (relative to the case's folder) whose state differs between two trees, except `allowed`. */
function changed(before: Map<string, string>, after: Map<string, string>, allowed: Set<string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys]
    .filter((key) => !allowed.has(key) && before.get(key) !== after.get(key))
    .map((key) => `${key}: ${before.get(key) ?? 'absent'} → ${after.get(key) ?? 'absent'}`);
}

// --- running the CLI --------------------------------------------------------------------------------

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Still running after WATCHDOG_MS, and killed. */
  hung: boolean;
}

function sync(rootArg: string, user: { uid: number; gid: number } | undefined): Promise<Result> {
  return runSlots(() => syncNow(rootArg, user));
}

function syncNow(rootArg: string, user: { uid: number; gid: number } | undefined): Promise<Result> {
  const cli = user ? builtForUnprivileged('dist/src/cli/main.js') : CLI;
  const child = spawn(process.execPath, [cli, 'sync', '--root', rootArg, '--json', '--workers', '2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...user,
  });
  let stdout = '';
  let stderr = '';
  let hung = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // A guard, not a wait: a run that ends in time is never delayed by it.
  const watchdog = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, WATCHDOG_MS);
  return new Promise((done, failed) => {
    child.once('error', failed);
    child.once('close', (code) => {
      clearTimeout(watchdog);
      done({ code, stdout, stderr, hung });
    });
  });
}

// --- the checks -------------------------------------------------------------------------------------

function summaryOf(result: Result, expect: ExpectStatic): SyncSummary {
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    expect.fail(
      `stdout is not the --json document (${JSON.stringify(result.stdout.slice(0, 200))}); stderr: ${result.stderr}`,
    );
  }
  return SyncSummarySchema.parse(parsed);
}

function expectControlSynced(at: Layout, expect: ExpectStatic): void {
  const manifest = JSON.parse(fs.readFileSync(join(at.manifestsDir, '0001_manifest.json'), 'utf8'));
  expect(manifest.training_data).toEqual([
    expect.objectContaining({
      filename: CONTROL_IMAGE,
      status: 'synced',
      s3_url: CONTROL_URL,
      md5_hash: createHash('md5').update(CONTROL_BYTES).digest('hex'),
    }),
  ]);
  expect(
    fs.existsSync(join(at.actorsDir, CONTROL, 'training_data', 'response.json')),
    "the control actor's response.json is retired",
  ).toBe(false);
}

function expectNoLeftovers(at: Layout, expect: ExpectStatic): void {
  if (!fs.lstatSync(at.manifestsDir, { throwIfNoEntry: false })?.isDirectory()) return;
  expect(leftovers(at.manifestsDir), 'temp files left in the manifests folder').toEqual([]);
  expect(fs.existsSync(join(at.manifestsDir, LOCK_NAME)), 'the lock is released').toBe(false);
  expect(fs.existsSync(join(at.actorsDir, LOCK_NAME)), "the actors folder's lock is released").toBe(false);
}

/** One expected problem among `found`: the file named exactly, the reason matching. */
function expectProblem(
  found: SyncSummary['errors'],
  wanted: z.infer<typeof Problem>,
  at: Layout,
  expect: ExpectStatic,
  what: string,
): SyncSummary['errors'][number] {
  const file = join(at.root, wanted.file);
  const match = found.find((p) => p.file === file && new RegExp(wanted.reason).test(p.reason));
  expect(
    match,
    `${what} naming ${file} with a reason matching /${wanted.reason}/; got ${JSON.stringify(found, null, 2)}`,
  ).toBeDefined();
  return match!;
}

const names = fs
  .readdirSync(CORPUS, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();
const cases = names.map(
  (name) => [name, CaseSchema.parse(JSON.parse(fs.readFileSync(join(CORPUS, name, 'case.json'), 'utf8')))] as const,
);

describe('the corpus', () => {
  it('has at least 25 cases, each with a maker that exists', ({ expect }) => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
    for (const [name, spec] of cases)
      if (spec.make) expect(MAKERS[spec.make], `${name}: make "${spec.make}"`).toBeDefined();
  });
});

describe.concurrent('hostile input: a clear error naming the file, the right exit code, nothing else changed', () => {
  for (const [name, spec] of cases) {
    const title = `${name}: ${spec.title}${spec.bug ? ' [BUG: see case.json]' : ''}`;
    it(
      title,
      async ({ expect }) => {
        const { at, rootArg } = await build(name, spec);
        try {
          const user = spec.uid ? unprivileged : undefined;
          if (user) spawnSync('chown', ['-R', `${user.uid}:${user.gid}`, at.work]);
          const before = tree(at.work);
          const result = await sync(rootArg, user);
          const after = tree(at.work);
          const bug = spec.bug ? ` (BUG: ${spec.bug})` : '';

          expect(
            result.hung,
            `sync was still running after ${WATCHDOG_MS / 1000} s and was killed: it hangs${bug}`,
          ).toBe(false);
          expect(result.stderr, `no stack trace, no unexpected failure${bug}`).not.toMatch(
            /\n\s+at |unexpected failure/,
          );
          // Each problem is one line (a file name or a parser's excerpt with a newline in it is escaped).
          for (const line of result.stderr.split('\n').filter(Boolean))
            expect(line, `one line a problem${bug}`).toMatch(/^(error|warning|actor-sync|sync): /);
          expect(result.code, `exit code${bug}; stderr: ${result.stderr}`).toBe(spec.expect.exit);

          const rel = (path: string) => join('root', path);
          const controlFiles = [
            rel('data/actor_manifests/0001_manifest.json'),
            rel(`data/actors/${CONTROL}/training_data/response.json`),
          ];
          const want = spec.expect;
          if (want.exit === 2) {
            expect(result.stdout).toBe('');
            const file = join(at.root, want.usage.file);
            expect(result.stderr.trim().split('\n'), 'one line').toHaveLength(1);
            expect(result.stderr.startsWith('actor-sync: '), result.stderr).toBe(true);
            expect(result.stderr, 'names the file').toContain(file);
            expect(result.stderr).toMatch(new RegExp(want.usage.reason));
            expect(changed(before, after, new Set()), 'nothing changed').toEqual([]);
          } else if (want.exit === 1) {
            const summary = summaryOf(result, expect);
            for (const wanted of want.errors) {
              const error = expectProblem(summary.errors, wanted, at, expect, 'an error');
              expect(result.stderr.split('\n'), 'stderr names the file').toContain(
                `error: ${error.actor}: ${error.file}: ${error.reason}`,
              );
            }
            expect(summary.errors, 'no other errors').toHaveLength(want.errors.length);
            for (const error of summary.errors) expect(error.reason, 'says what happens now').toMatch(/left unchanged/);
            expect(changed(before, after, new Set(controlFiles)), `only the control actor changed${bug}`).toEqual([]);
            expectControlSynced(at, expect);
          } else {
            const summary = summaryOf(result, expect);
            expect(summary.errors).toEqual([]);
            for (const wanted of want.warnings) expectProblem(summary.warnings, wanted, at, expect, 'a warning');
            expect(summary.warnings, 'no other warnings').toHaveLength(want.warnings.length);
            const hostileFiles = [
              rel('data/actor_manifests/0005_manifest.json'),
              rel(`data/actors/${HOSTILE}/training_data/response.json`),
            ];
            expect(
              changed(before, after, new Set([...controlFiles, ...(want.entries ? hostileFiles : [])])),
              'nothing else changed',
            ).toEqual([]);
            if (want.entries === null)
              expect(fs.existsSync(at.manifest), 'the skipped actor has no manifest').toBe(false);
            else {
              const entries = JSON.parse(fs.readFileSync(at.manifest, 'utf8')).training_data;
              expect(entries.map((e: { filename: string }) => e.filename)).toEqual(want.entries.map((e) => e.filename));
              for (const [i, entry] of want.entries.entries()) expect(entries[i]).toMatchObject(entry);
            }
            const response = join('root', 'data', 'actors', HOSTILE, 'training_data', 'response.json');
            expect(before.has(response), 'response.json was there before').toBe(want.legacy === 'retired');
            expect(after.has(response), 'response.json is there after').toBe(false);
            expectControlSynced(at, expect);
          }
          expectNoLeftovers(at, expect);
        } finally {
          removeWork(at);
        }
      },
      CASE_TIMEOUT_MS,
    );
  }
});

// GNU time reports the child's peak RSS (threads included) from the kernel after it exits: nothing racy.
const GNU_TIME = '/usr/bin/time';
const hasGnuTime =
  spawnSync(GNU_TIME, ['-f', '%M', 'true'], { encoding: 'utf8' }).stderr?.trim().match(/^\d+$/) !== null;

/** The peak RSS, in MiB, of `sync --root <root> --json --workers 2` as the corpus runs it. */
function peakRssMiB(rootArg: string, work: string): number {
  const out = join(work, 'rss.txt');
  spawnSync(
    GNU_TIME,
    ['-f', '%M', '-o', out, process.execPath, CLI, 'sync', '--root', rootArg, '--json', '--workers', '2'],
    { stdio: 'ignore', timeout: WATCHDOG_MS },
  );
  // A run that exits 1 gets a "Command exited with non-zero status 1" line first.
  return Number(fs.readFileSync(out, 'utf8').trim().split('\n').at(-1)) / 1024;
}

describe('the 50 MB response.json', () => {
  it.skipIf(!hasGnuTime)(
    "is refused without being read: the run's peak memory is within 25 MB of the same run with a small response.json",
    async ({ expect }) => {
      const [name, spec] = cases.find(([n]) => n === 'response-50mb')!;
      const hostile = await build(name, spec);
      const plain = await build(name, { ...spec, make: undefined });
      try {
        fs.writeFileSync(
          join(plain.at.trainingDir, 'response.json'),
          `${JSON.stringify({ output: { output: { s3_image_urls: [] } } })}\n`,
        );
        const baseline = peakRssMiB(plain.rootArg, plain.at.work);
        const peak = peakRssMiB(hostile.rootArg, hostile.at.work);
        // Reading it at all would hold its 50 MiB at least once.
        expect(
          peak - baseline,
          `peak ${peak.toFixed(0)} MiB, with a small response.json ${baseline.toFixed(0)} MiB`,
        ).toBeLessThan(25);
      } finally {
        removeWork(hostile.at);
        removeWork(plain.at);
      }
    },
  );
});
