/** The real CLI as a process: exit codes, stdout/stderr discipline, --json, check. */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { generateDataRoot } from '../demo/generate.js';
import { shardOf } from '../src/engine/shard.js';
import { CheckSummarySchema, StatusSummarySchema, SyncSummarySchema } from '../src/engine/summary.js';
import { BenchSummarySchema } from '../src/engine/throughput.js';
import { startCli } from './helpers/cli.js';
import {
  addImages,
  manifestPath,
  SEED_BASE,
  SEED_NAME,
  SEED_URLS,
  seedActor0000,
  snapshot,
  tempRoot,
  trainingDir,
  writeManifest,
  writeResponseJson,
} from './helpers/root.js';
import { builtForUnprivileged, unprivileged } from './helpers/unprivileged.js';

const CLI = resolve(import.meta.dirname, '../dist/src/cli/main.js');
// A test runs the CLI up to nine times in a row, each run seconds long on a loaded machine: each run has
// its own watchdog (the 60 s timeout of `cli`), and the test's is only for a hang.
vi.setConfig({ testTimeout: 10 * 60_000 });

/**
 * `stderr` without the plain progress lines (src/progress.ts): off a terminal a run prints one every 5 s,
 * so a run slowed by a loaded machine has some and a fast one none.
 */
function withoutProgress(stderr: string): string {
  return stderr.replace(/^\w+: \d+\/\d+ actors, \d+\.\d MB hashed, \d+\.\d MB\/s\n/gm, '');
}

function cli(args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The CLI run as the `unprivileged` user (as root, uid 65534 from a readable copy of the build), for file modes to count. */
function cliUnprivileged(args: string[]) {
  const result = spawnSync(process.execPath, [builtForUnprivileged('dist/src/cli/main.js'), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...unprivileged,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('usage errors exit 2 with one clear line and no stack', () => {
  it('an unknown flag', async () => {
    const root = await tempRoot();
    const r = cli(['sync', '--root', root, '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--frobnicate'/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it('a missing root', () => {
    const r = cli(['status', '--root', '/nonexistent/actor-sync-root']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('actor-sync: /nonexistent/actor-sync-root does not exist; check --root\n');
  });

  it('a root that is a file', async () => {
    const root = await tempRoot();
    const file = join(root, 'plain.txt');
    writeFileSync(file, 'x');
    const r = cli(['check', '--root', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a folder; check --root/);
  });

  it('a bad --workers value', async () => {
    const root = await tempRoot();
    const r = cli(['sync', '--root', root, '--workers', 'zero']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers/);
  });

  it('too many threads: every command that takes --workers has one limit and one message (issue 16)', async () => {
    const root = await tempRoot();
    for (const args of [
      ['sync', '--workers', '300'],
      ['serve', '--port', '0', '--workers', '300'],
      ['bench', '--workers', '1,300'],
    ]) {
      const r = cli([...args, '--root', root]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(
        /^error: option '--workers <[a-z]+>' argument '[\d,]+' is invalid\. at most 256 threads, got 300\n$/,
      );
    }
  });

  it('--help says what --verify looks past: size, mtime and inode (issue 16)', () => {
    expect(cli(['sync', '--help']).stdout).toContain('rehash files whose size, mtime and inode did not change');
  });

  it('--help on every command exits 0 and lists its flags', () => {
    const flags = {
      sync: ['--dry-run', '--keep-legacy', '--shard'],
      status: ['--json', '--remote'],
      check: ['--require-synced'],
      push: ['--repair', '--upload-url-template', '--endpoint'],
      pull: ['--endpoint', '--s3-concurrency'],
      'restore-legacy': ['--force', '--dry-run'],
      bench: ['--workers <list>', '--rounds'],
      serve: ['--host', '--port'],
    };
    const r = cli(['--help']);
    const listed = [...r.stdout.matchAll(/^ {2}([a-z][a-z-]*) /gm)].map((m) => m[1]).filter((name) => name !== 'help');
    expect(listed.sort()).toEqual(Object.keys(flags).sort()); // every command the CLI has is checked below
    for (const [command, expected] of Object.entries(flags)) {
      const r = cli([command, '--help']);
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).toMatch(new RegExp(`^Usage: actor-sync ${command} `));
      for (const flag of [...expected, '--root', '--help']) expect(r.stdout, command).toContain(flag);
    }
  });
});

describe('an actor selector that matches no actor folder', () => {
  it('is a usage error in every command that takes one: exit 2, one line naming it, nothing written, no lock left', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const manifests = join(root, 'data', 'actor_manifests');
    const before = await snapshot(root);
    const names = readdirSync(manifests);
    for (const [typo, args] of [
      ['0009', ['check', '--actor', '0009', '--require-synced']],
      ['nosuch', ['check', '--actor', '0', '--actor', 'nosuch']], // one that matches does not excuse one that does not
      ['nosuch', ['sync', '--actor', 'nosuch']],
      ['nosuch', ['status', 'nosuch']],
      ['nosuch', ['status', '--actor', 'nosuch', '--json']],
      ['nosuch', ['push', '--actor', 'nosuch']],
      ['nosuch', ['pull', '--actor', 'nosuch', '--dry-run']],
      ['nosuch', ['restore-legacy', 'nosuch', '--force']],
      ['0001', ['restore-legacy', '--actor', '0001']],
    ] as const) {
      const r = cli([...args, '--root', root]);
      expect(r.stderr, args.join(' ')).toBe(
        `actor-sync: no actor matches "${typo}" (in ${join(root, 'data', 'actors')})\n`,
      );
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    expect(await snapshot(root)).toEqual(before);
    expect(readdirSync(manifests)).toEqual(names); // no lock left behind
  });

  it('on a root never synced, sync, push and pull make no manifests folder for it', async () => {
    const root = await tempRoot();
    await addImages(root, '0001_only', { 'a.png': 100 });
    rmSync(join(root, 'data', 'actor_manifests'), { recursive: true });
    const before = await snapshot(root);
    for (const command of ['sync', 'push', 'pull']) {
      const r = cli([command, '--actor', 'nosuch', '--root', root]);
      expect(r.code, command).toBe(2);
      expect(existsSync(join(root, 'data', 'actor_manifests')), command).toBe(false);
    }
    expect(await snapshot(root)).toEqual(before);
  });

  it('is no error with --shard when the actor exists but another shard owns it', async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const owner = shardOf('0000', 2);
    const other = 3 - owner;
    const manifestBefore = readFileSync(seed.manifest, 'utf8');
    const elsewhere = cli(['status', '0', '--root', root, '--shard', `${other}/2`, '--json']);
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    expect(StatusSummarySchema.parse(JSON.parse(elsewhere.stdout)).per_actor).toEqual([]);
    const sync = cli(['sync', '--actor', SEED_NAME, '--root', root, '--shard', `${other}/2`]);
    expect(sync.code, sync.stderr).toBe(0);
    expect(readFileSync(seed.manifest, 'utf8')).toBe(manifestBefore); // not this shard's to write
    const owned = cli(['status', '0', '--root', root, '--shard', `${owner}/2`, '--json']);
    expect(owned.code).toBe(0);
    expect(StatusSummarySchema.parse(JSON.parse(owned.stdout)).per_actor.map((a) => a.name)).toEqual([SEED_NAME]);
  });
});

describe('sync', () => {
  it('--json prints one document described by the exported schema, and nothing else on stdout', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const r = cli(['sync', '--root', root, '--json']);
    expect(r.code).toBe(0);
    const summary = SyncSummarySchema.parse(JSON.parse(r.stdout));
    expect(summary).toMatchObject({
      command: 'sync',
      files_hashed: 17,
      manifests: { written: 1, created: 0, unchanged: 0, failed: 0 },
      legacy: { retired: 1 },
      totals: { images: 17, synced: 12, local_only: 5 },
      errors: [],
    });
    expect(withoutProgress(r.stderr)).toBe('');
  });

  it('keeps every key another tool put in an entry, one named __proto__ included', async () => {
    const root = await tempRoot();
    await addImages(root, '0006_keys', { 'a.png': 100 });
    const path = manifestPath(root, '0006');
    mkdirSync(join(root, 'data', 'actor_manifests'), { recursive: true });
    writeFileSync(
      path,
      '{"character_id": "0006", "training_data": [{"filename": "a.png", "rating": 5, "__proto__": {"entry": 1}}]}\n',
    );
    const r = cli(['sync', '--root', root]);
    expect(r.code, r.stderr).toBe(0);
    const [entry] = JSON.parse(readFileSync(path, 'utf8')).training_data;
    expect(entry.rating).toBe(5);
    expect(Object.hasOwn(entry, '__proto__')).toBe(true);
    expect(entry.__proto__).toEqual({ entry: 1 });
    expect(entry.md5_hash).toMatch(/^[0-9a-f]{32}$/);
  });

  it('an actor that fails makes the run exit 1 and is named on stderr; the others are written', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const bad = await writeManifest(root, '0001', [1, 2]);
    await addImages(root, '0001_listy', { 'a.png': 10 });
    const r = cli(['sync', '--root', root]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: 0001_listy: ${bad}: the top level is not an object (got list); left unchanged`);
    expect(r.stdout).toMatch(/1 written, 0 created, 0 unchanged, 1 failed/);
    expect(readFileSync(bad, 'utf8')).toBe('[\n  1,\n  2\n]');
  });

  it('an unreadable image fails its actor with the file and reason, and changes nothing of it', async () => {
    // Root reads anything, so as root the run drops to an unprivileged user that owns the tree but may
    // not read the one image.
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const image = join(trainingDir(root, SEED_NAME), `${SEED_NAME}_2.png`);
    const manifestBefore = readFileSync(seed.manifest);
    if (unprivileged) spawnSync('chown', ['-R', `${unprivileged.uid}:${unprivileged.gid}`, root]);
    chmodSync(image, 0o000);
    const r = cliUnprivileged(['sync', '--root', root]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: ${SEED_NAME}: ${image}: cannot be read (EACCES`);
    expect(readFileSync(seed.manifest)).toEqual(manifestBefore);
    expect(readFileSync(seed.response, 'utf8')).toContain('s3_image_urls');
  });
});

describe('a read-only data root', () => {
  it('status and check, which write nothing, work on it: no actor fails as read-only', async () => {
    // Root writes anything, so as root the runs drop to an unprivileged user.
    const root = await tempRoot();
    await seedActor0000(root); // its manifest has no training_data yet: a sync would rewrite it
    await addImages(root, '0001_new', { '0001_new_0.png': 10 });
    const before = await snapshot(root);
    if (unprivileged) spawnSync('chown', ['-R', `${unprivileged.uid}:${unprivileged.gid}`, root]);
    spawnSync('chmod', ['-R', 'a-w', root]);
    try {
      const status = cliUnprivileged(['status', '--root', root, '--json']);
      expect(status.stderr).not.toMatch(/read-only/);
      expect(status.code, status.stderr).toBe(0);
      expect(StatusSummarySchema.parse(JSON.parse(status.stdout)).errors).toEqual([]);

      const check = cliUnprivileged(['check', '--root', root, '--json']);
      expect(check.stderr).not.toMatch(/read-only/);
      expect(check.code, check.stderr).toBe(1); // what sync would change, not a failure
      const summary = CheckSummarySchema.parse(JSON.parse(check.stdout));
      expect(summary.errors).toEqual([]);
      expect(summary.differences.map((d) => d.actor)).toEqual(expect.arrayContaining([SEED_NAME, '0001_new']));
      expect(await snapshot(root)).toEqual(before);
    } finally {
      spawnSync('chmod', ['-R', 'u+w', root]);
    }
  });
});

describe('two actor folders that share an id', () => {
  it('fail when only one of them is selected (--actor <full name>): the manifest they share is not written', async () => {
    const root = await tempRoot();
    for (const name of ['0005_a', '0005_b']) {
      await addImages(root, name, { [`${name}_0.png`]: 100 });
      await writeResponseJson(root, name, [
        `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${name}/${name}_0.png`,
      ]);
    }
    for (const name of ['0005_a', '0005_b']) {
      const r = cli(['sync', '--root', root, '--actor', name]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `error: ${name}: ${join(root, 'data/actors', name)}: 2 actor folders share the id 0005 (0005_a, 0005_b)`,
      );
    }
    expect(existsSync(manifestPath(root, '0005'))).toBe(false);
    for (const name of ['0005_a', '0005_b'])
      expect(existsSync(join(trainingDir(root, name), 'response.json'))).toBe(true);
  });
});

describe('check', () => {
  it('exits 0 on a fresh sync and 1, naming the file, after an image changes', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const before = cli(['check', '--root', root]);
    expect(before.code).toBe(1);
    expect(before.stdout).toContain(
      `${SEED_NAME} / ${join(trainingDir(root, SEED_NAME), 'response.json')} / legacy file not yet retired`,
    );

    expect(cli(['sync', '--root', root]).code).toBe(0);
    const clean = cli(['check', '--root', root]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/^check: in sync$/m);

    writeFileSync(join(trainingDir(root, SEED_NAME), `${SEED_NAME}_6.png`), 'changed bytes');
    const files = await snapshot(root);
    const drift = cli(['check', '--root', root, '--json']);
    expect(drift.code).toBe(1);
    const summary = CheckSummarySchema.parse(JSON.parse(drift.stdout));
    expect(summary.ok).toBe(false);
    expect(summary.differences).toEqual(
      expect.arrayContaining([
        { actor: SEED_NAME, file: `${SEED_NAME}_6.png`, what: 'status: "synced" → "out_of_sync"' },
      ]),
    );
    expect(await snapshot(root)).toEqual(files); // check writes nothing: every file's bytes and mtime as they were
  });

  it('exits 0 after a sync of a generated root with duplicates, legacy files and missing manifests', async () => {
    const root = join(await tempRoot(), 'generated');
    await generateDataRoot(root, { actors: 8 });
    expect(cli(['sync', '--root', root]).code).toBe(0);
    const r = cli(['check', '--root', root]);
    expect(r.stdout).toMatch(/^check: in sync$/m);
    expect(r.code).toBe(0);
  });

  it('--require-synced fails while any image is not synced, naming each one: actor / file / status', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await addImages(root, '0002_synced', { 'a.png': 10 });
    await writeResponseJson(root, '0002_synced', [`${SEED_BASE}/0002_synced/a.png`]); // taken as synced (the legacy rule)
    expect(cli(['sync', '--root', root]).code).toBe(0);
    const notSynced = [0, 1, 2, 3].map((i) => `${SEED_NAME}_${i}.png`).concat(`${SEED_NAME}_4.jpg`);
    const r = cli(['check', '--root', root, '--require-synced']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      notSynced.map((file) => `${SEED_NAME} / ${file} / local_only (--require-synced)\n`).join(''),
    );
    expect(r.stdout).not.toContain(' / - / ');
    expect(r.stdout).toMatch(/^check: 5 differences, 0 errors$/m);
    const json = CheckSummarySchema.parse(
      JSON.parse(cli(['check', '--root', root, '--require-synced', '--json']).stdout),
    );
    expect(json.ok).toBe(false);
    expect(json.differences).toEqual(
      notSynced.map((file) => ({ actor: SEED_NAME, file, what: 'local_only (--require-synced)' })),
    );
    // Every image synced: nothing to list, exit 0.
    const synced = cli(['check', '--root', root, '--require-synced', '--actor', '0002']);
    expect(synced.code, synced.stdout).toBe(0);
    expect(synced.stdout).toMatch(/^check: in sync$/m);
  });
});

describe('check finding no actor folder', () => {
  it('is a usage error (exit 2, one line naming the folder), --require-synced included: it never passes on nothing', async () => {
    const root = await tempRoot();
    for (const extra of [[], ['--require-synced'], ['--json']]) {
      const r = cli(['check', '--root', root, ...extra]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toBe(
        `actor-sync: no actor folder found in ${join(root, 'data', 'actors')}; check --root and --actors-dir\n`,
      );
      expect(r.stdout).toBe('');
    }
    // Nor when the only folders are symlinks leading out of the actors folder (skipped).
    const outside = join(await tempRoot(), 'elsewhere');
    mkdirSync(join(outside, 'training_data'), { recursive: true });
    symlinkSync(outside, join(root, 'data', 'actors', '0001_out'));
    const skipped = cli(['check', '--root', root]);
    expect(skipped.code).toBe(2);
    expect(skipped.stderr).toMatch(
      /no actor folder found in .* \(skipped: \S+0001_out: a symlink leading out of the actors folder; not followed\); check --root/,
    );
  });

  it('--actors-dir outside the root: finds the actors and passes once they are synced', async () => {
    const root = await tempRoot();
    const actorsDir = join(await tempRoot(), 'data', 'actors');
    mkdirSync(join(actorsDir, '0002_a', 'training_data'), { recursive: true });
    writeFileSync(join(actorsDir, '0002_a', 'training_data', 'a.png'), 'image a');
    expect(cli(['check', '--root', root, '--actors-dir', actorsDir]).code).toBe(1);
    const synced = cli(['sync', '--root', root, '--actors-dir', actorsDir]);
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stderr).not.toContain('warning');
    const r = cli(['check', '--root', root, '--actors-dir', actorsDir]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^check: in sync$/m);
  });
});

describe('status', () => {
  it('prints per-actor counts for the named actors and writes nothing', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    mkdirSync(join(root, 'data', 'actors', '0009_empty'));
    const before = await snapshot(root);
    const r = cli(['status', '0', '--root', root, '--json']);
    expect(r.code).toBe(0);
    const summary = StatusSummarySchema.parse(JSON.parse(r.stdout));
    expect(summary.per_actor).toEqual([
      {
        id: '0000',
        name: SEED_NAME,
        failed: false,
        images: 17,
        synced: 12,
        local_only: 5,
        s3_only: 0,
        out_of_sync: 0,
        missing: 0,
        size_bytes: 17 * 50_000,
      },
    ]);
    const text = cli(['status', '--root', root]);
    expect(text.stdout).toMatch(new RegExp(`^${SEED_NAME}\\s+17\\s+12\\s+5\\s+0\\s+0\\s+0$`, 'm'));
    expect(await snapshot(root)).toEqual(before); // every file's bytes and mtime as they were
    expect(readdirSync(root, { recursive: true }).sort()).toEqual(
      [
        ...before.keys(),
        'data',
        'data/actors',
        'data/actor_manifests',
        'data/actors/0009_empty',
        `data/actors/${SEED_NAME}`,
        `data/actors/${SEED_NAME}/training_data`,
      ].sort(),
    ); // no file or folder added
  });
});

describe('bench', () => {
  it("hashes every image of a small root once per setting: --json parses, its files and bytes are the root's; writes nothing", async () => {
    const root = await tempRoot();
    const sizes = { 'a_1.png': 1_000, 'a_2.jpg': 70_000, 'a_3.webp': 1 };
    await addImages(root, '0001_a', sizes);
    await addImages(root, '0002_b', { 'b_1.png': 4_096 });
    await writeResponseJson(root, '0002_b', [`${SEED_BASE}/0002_b/b_1.png`]); // not an image: not hashed
    await writeManifest(root, '0001', { character_id: '0001' });
    const before = await snapshot(root);
    const r = cli(['bench', '--root', root, '--workers', '1', '--rounds', '1', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = BenchSummarySchema.parse(JSON.parse(r.stdout));
    expect(summary).toMatchObject({ command: 'bench', root, files: 4, bytes: 1_000 + 70_000 + 1 + 4_096 });
    expect(summary.runs).toHaveLength(1);
    expect(summary.runs[0]!.workers).toBe(1);
    expect(await snapshot(root)).toEqual(before);
  });
});

describe('--quiet', () => {
  it('drops progress, warnings and the summary, never the results: the status table, the differences, the transfers', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    mkdirSync(join(trainingDir(root, SEED_NAME), 'folder.jpg')); // a warning: not a regular file
    const bad = await writeManifest(root, '0001', [1, 2]); // an error
    await addImages(root, '0001_listy', { 'a.png': 10 });
    const error = `error: 0001_listy: ${bad}: the top level is not an object (got list); left unchanged\n`;
    const loud = cli(['status', '--root', root]);
    expect(loud.stderr).toMatch(/^warning: .*folder\.jpg: not a regular file; skipped$/m);

    const status = cli(['status', '--root', root, '--quiet']);
    expect(status.code).toBe(1);
    expect(status.stderr).toBe(error);
    expect(status.stdout).toMatch(
      new RegExp(
        `^actor\\s+images\\s+synced.*\\n${SEED_NAME}\\s+17\\s+12\\s+5\\s+0\\s+0\\s+0\\n0001_listy \\(failed\\).*\\n$`,
      ),
    );

    const check = cli(['check', '--root', root, '--quiet']);
    expect(check.code).toBe(1);
    expect(check.stderr).toBe(error);
    expect(check.stdout).toContain(
      `${SEED_NAME} / ${join(trainingDir(root, SEED_NAME), 'response.json')} / legacy file not yet retired\n`,
    );
    expect(
      check.stdout
        .split('\n')
        .filter(Boolean)
        .every((line) => line.startsWith(`${SEED_NAME} / `)),
    ).toBe(true); // no verdict, no summary

    const push = cli(['push', '--root', root, '--quiet', '--dry-run']);
    expect(push.stderr).toBe(error);
    const lines = push.stdout.split('\n').filter(Boolean);
    // The seed's five local_only images, and nothing else.
    expect(lines.map((line) => /^would upload: \S+ \/ (\S+) → https:\/\//.exec(line)?.[1])).toEqual(
      [0, 1, 2, 3].map((i) => `${SEED_NAME}_${i}.png`).concat(`${SEED_NAME}_4.jpg`),
    );

    const json = cli(['check', '--root', root, '--quiet', '--json']);
    expect(CheckSummarySchema.parse(JSON.parse(json.stdout)).differences.length).toBeGreaterThan(0);
  });
});

describe('a stdout that cannot be written', () => {
  it('a reader that went away (`| head -1`) ends nothing: the run finishes with its own exit code, quietly', async () => {
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const run = startCli(['sync', '--root', root, '--json']);
    run.child.stdout!.destroy(); // the read end closes before the run prints: its writes get EPIPE
    const r = await run.done;
    expect(withoutProgress(r.stderr)).toBe('');
    expect(r.code).toBe(0);
    const manifest = JSON.parse(readFileSync(seed.manifest, 'utf8')) as { training_data: unknown[] };
    expect(manifest.training_data).toHaveLength(17);
    expect(existsSync(seed.response)).toBe(false); // retired, as in any sync that succeeds
  });

  it('a failed write (a full disk) is said on stderr and makes the run exit 1; the manifests are still written', async () => {
    expect(
      existsSync('/dev/full'),
      'no /dev/full here: create it with mknod -m 666 /dev/full c 1 7 (.ci/run does)',
    ).toBe(true);
    const root = await tempRoot();
    const seed = await seedActor0000(root);
    const full = openSync('/dev/full', 'w');
    try {
      const result = spawnSync(process.execPath, [CLI, 'sync', '--root', root, '--json'], {
        encoding: 'utf8',
        timeout: 60_000,
        stdio: ['ignore', full, 'pipe'],
      });
      expect(withoutProgress(result.stderr)).toBe(
        'actor-sync: cannot write to stdout (ENOSPC: no space left on device, write); the results printed there are incomplete\n',
      );
      expect(result.status).toBe(1);
    } finally {
      closeSync(full);
    }
    const manifest = JSON.parse(readFileSync(seed.manifest, 'utf8')) as { training_data: unknown[] };
    expect(manifest.training_data).toHaveLength(17);
  });
});

describe('messages a new user can act on (issue 12 §3)', () => {
  it('no command: the help on stderr, exit 2 (a usage error), nothing on stdout', () => {
    const r = cli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Usage: actor-sync /);
    expect(r.stderr).toContain('restore-legacy');
  });

  it('status describes the state ("need writing", "to retire"), not what it would do', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const r = cli(['status', '--root', root]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/would be|dry run/);
    expect(r.stdout).toMatch(/^status: 1 actors, 17 images$/m);
    expect(r.stdout).toMatch(/^ {2}manifests: 1 need writing, 0 to create, 0 up to date, 0 failed$/m);
    expect(r.stdout).toMatch(/^ {2}legacy: {4}1 response\.json to retire, 0 kept, 0 failed$/m);
  });

  it('the images total says how many of them are only in S3', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await writeResponseJson(root, SEED_NAME, [...SEED_URLS, `${SEED_BASE}/${SEED_NAME}/${SEED_NAME}_99.png`]);
    const r = cli(['sync', '--root', root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sync: 1 actors, 18 images \(1 only in S3\)$/m);
  });

  it('a file name with a newline is escaped: check prints one line per difference, and one per problem', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await addImages(root, SEED_NAME, { 'two\nlines.png': 10 });
    mkdirSync(join(trainingDir(root, SEED_NAME), 'tab\there.jpg')); // a warning naming it
    const r = cli(['check', '--root', root]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${SEED_NAME} / two\\nlines.png / not in the manifest yet (would be local_only)\n`);
    expect(r.stderr).toMatch(/^warning: .*tab\\there\.jpg: not a regular file; skipped$/m);
    const lines = r.stdout.split('\n');
    const verdict = lines.findIndex((line) => line.startsWith('check: '));
    expect(verdict).toBeGreaterThan(0);
    for (const line of lines.slice(0, verdict)) expect(line.startsWith(`${SEED_NAME} / `), line).toBe(true);
    // --json keeps the name as it is.
    const json = CheckSummarySchema.parse(JSON.parse(cli(['check', '--root', root, '--json']).stdout));
    expect(json.differences.map((d) => d.file)).toContain('two\nlines.png');
  });

  it('an actor id too long for the file system: one error naming the manifest, no advice about free space or a response.json it has not got', async () => {
    const root = await tempRoot();
    const id = 'a'.repeat(235);
    await addImages(root, `${id}_long`, { 'x.png': 10 });
    const r = cli(['sync', '--root', root]);
    expect(r.code).toBe(1);
    const target = manifestPath(root, id);
    expect(withoutProgress(r.stderr)).toBe(
      `error: ${id}_long: ${target}: cannot be written: its name is too long for the file system: ${id.length + '_manifest.json'.length} bytes, and the temp file written beside it needs 48 more (most file systems allow 255 in all); left unchanged\n`,
    );
    expect(r.stdout).toMatch(/^ {2}legacy: {4}0 response\.json retired, 0 kept, 0 failed$/m);
  });
});

describe('URLs are compared by bucket and key, not as strings (issue 12 §3)', () => {
  it("response.json naming the manifest's objects as s3:// URLs agrees with it: retired, the manifest's form kept", async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    expect(cli(['sync', '--root', root]).code).toBe(0);
    const before = readFileSync(manifestPath(root, '0000'), 'utf8');
    const response = await writeResponseJson(
      root,
      SEED_NAME,
      SEED_URLS.map((url) =>
        url.replace('https://story-boards-assets.s3.us-west-1.amazonaws.com/', 's3://story-boards-assets/'),
      ),
    );
    const r = cli(['sync', '--root', root]);
    expect(withoutProgress(r.stderr)).toBe('');
    expect(r.code).toBe(0);
    expect(existsSync(response)).toBe(false);
    expect(readFileSync(manifestPath(root, '0000'), 'utf8')).toBe(before);
  });

  it('a real conflict on every URL is one short line, not one line of every URL', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    expect(cli(['sync', '--root', root]).code).toBe(0);
    await writeResponseJson(
      root,
      SEED_NAME,
      SEED_URLS.map((url) => url.replace('story-boards-assets', 'another-bucket')),
    );
    const r = cli(['sync', '--root', root]);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /response\.json: .*another-bucket.* but the manifest has .*; and 11 more like it; resolve by hand/,
    );
    expect(lines[0]!.length).toBeLessThan(600);
  });
});
