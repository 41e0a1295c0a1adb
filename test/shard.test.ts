/** Sharding: stable, disjoint slices that together cover every actor, and shards that run at once. */
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateDataRoot } from '../demo/generate.js';
import { UsageError } from '../src/errors.js';
import { parseShard, shardOf } from '../src/engine/shard.js';
import { runCli } from './helpers/cli.js';
import { holdLock } from './helpers/lock.js';
import { tempRoot } from './helpers/root.js';

const run = runCli;

describe('parseShard', () => {
  it('reads --shard K/N, or JOB_COMPLETION_INDEX (0-based) with a shard count', () => {
    expect(parseShard('2/4', undefined, {})).toEqual({ index: 2, count: 4 });
    expect(parseShard(undefined, 4, { JOB_COMPLETION_INDEX: '0' })).toEqual({ index: 1, count: 4 });
    expect(parseShard(undefined, undefined, { JOB_COMPLETION_INDEX: '3', ACTOR_SYNC_SHARD_COUNT: '4' })).toEqual({
      index: 4,
      count: 4,
    });
    expect(parseShard('1/2', 4, { JOB_COMPLETION_INDEX: '3' })).toEqual({ index: 1, count: 2 });
    expect(parseShard(undefined, undefined, { JOB_COMPLETION_INDEX: '3' })).toBeUndefined();
  });

  it('rejects malformed and out-of-range shards with a message naming them', () => {
    for (const [flag, count, env, message] of [
      ['2-4', undefined, {}, /--shard 2-4: expected K\/N/],
      ['0/4', undefined, {}, /--shard 0\/4: the shard must be from 1 to 4/],
      ['5/4', undefined, {}, /from 1 to 4/],
      [undefined, 4, {}, /^--shard-count 4 needs JOB_COMPLETION_INDEX \(0-based, from 0 to 3\) or --shard K\/N$/],
      [
        undefined,
        undefined,
        { ACTOR_SYNC_SHARD_COUNT: '4' },
        /^ACTOR_SYNC_SHARD_COUNT=4 needs JOB_COMPLETION_INDEX \(0-based, from 0 to 3\)/,
      ],
      [
        undefined,
        4,
        { JOB_COMPLETION_INDEX: '4' },
        /^JOB_COMPLETION_INDEX=4: expected a whole number from 0 to 3 \(0-based, with --shard-count 4\)$/,
      ],
      [
        undefined,
        2,
        { JOB_COMPLETION_INDEX: 'abc' },
        /^JOB_COMPLETION_INDEX=abc: expected a whole number from 0 to 1 \(0-based, with --shard-count 2\)$/,
      ],
      [undefined, 2, { JOB_COMPLETION_INDEX: '-1' }, /^JOB_COMPLETION_INDEX=-1: expected a whole number from 0 to 1/],
      [
        undefined,
        undefined,
        { JOB_COMPLETION_INDEX: '0', ACTOR_SYNC_SHARD_COUNT: 'zz' },
        /^ACTOR_SYNC_SHARD_COUNT=zz: expected a whole number of at least 1$/,
      ],
      [
        undefined,
        undefined,
        { JOB_COMPLETION_INDEX: '0', ACTOR_SYNC_SHARD_COUNT: '0' },
        /^ACTOR_SYNC_SHARD_COUNT=0: expected a whole number of at least 1$/,
      ],
    ] as const) {
      expect(() => parseShard(flag, count, env)).toThrow(UsageError);
      expect(() => parseShard(flag, count, env)).toThrow(message);
    }
  });

  // The documented mapping (README "Scale-out"): the first 32 bits of the id's MD5, big-endian, modulo N, plus 1.
  // Pinned values, so a change of hash, byte order or base moves a test, not just the actors.
  it.each([
    // id, first 8 hex digits of md5(id), shard of 4, of 3, of 7
    ['0000', '4a7d1ed4', 1, 1, 6],
    ['0001', '25bbdcd0', 1, 2, 2],
    ['0002', 'fcd04e26', 3, 1, 4],
    ['0003', '7cd86ecb', 4, 3, 3],
    ['0007', '6950aac2', 3, 1, 6],
    ['0042', 'c2e38e55', 2, 1, 7],
    ['1234', '81dc9bdb', 4, 1, 2],
  ] as const)('maps actor %s (md5 %s…) to shard %i of 4, %i of 3, %i of 7', (id, md5Prefix, of4, of3, of7) => {
    const word = Number.parseInt(md5Prefix, 16);
    expect([of4, of3, of7]).toEqual([4, 3, 7].map((n) => (word % n) + 1)); // the table is the documented formula
    expect([shardOf(id, 4), shardOf(id, 3), shardOf(id, 7)]).toEqual([of4, of3, of7]);
    expect(shardOf(id, 1)).toBe(1);
  });

  it('puts an actor in the same shard whatever other actors exist', () => {
    const ids = Array.from({ length: 3000 }, (_, i) => String(i).padStart(4, '0'));
    const shards = ids.map((id) => shardOf(id, 4));
    expect(new Set(shards)).toEqual(new Set([1, 2, 3, 4]));
    expect(ids.slice(0, 289).map((id) => shardOf(id, 4))).toEqual(shards.slice(0, 289));
    // Roughly even: no shard gets less than a fifth of 3000 actors.
    for (const k of [1, 2, 3, 4]) expect(shards.filter((s) => s === k).length).toBeGreaterThan(600);
  });
});

describe('sharded runs', () => {
  it('N shards as parallel processes give the same manifests as one unsharded run, each actor exactly once', async () => {
    const base = await tempRoot();
    const pristine = join(base, 'pristine');
    await generateDataRoot(pristine, { actors: 40 });
    const whole = join(base, 'whole');
    const sharded = join(base, 'sharded');
    cpSync(pristine, whole, { recursive: true, preserveTimestamps: true });
    cpSync(pristine, sharded, { recursive: true, preserveTimestamps: true });

    expect((await run(['sync', '--root', whole, '--workers', '1'])).code).toBe(0);
    const shards = await Promise.all([
      run(['sync', '--root', sharded, '--shard', '1/3', '--workers', '1', '--json']),
      run(['sync', '--root', sharded, '--shard-count', '3', '--workers', '1', '--json'], { JOB_COMPLETION_INDEX: '1' }),
      run(['sync', '--root', sharded, '--workers', '1', '--json'], {
        JOB_COMPLETION_INDEX: '2',
        ACTOR_SYNC_SHARD_COUNT: '3',
      }),
    ]);
    expect(shards.map((s) => s.code)).toEqual([0, 0, 0]);
    const selected = shards.map((s) => JSON.parse(s.stdout).actors.selected as number);
    expect(selected.reduce((a, b) => a + b, 0)).toBe(40);
    expect(selected.every((n) => n > 0)).toBe(true);

    const manifests = (root: string) => join(root, 'data', 'actor_manifests');
    const names = readdirSync(manifests(whole))
      .filter((n) => n.endsWith('_manifest.json'))
      .sort();
    expect(
      readdirSync(manifests(sharded))
        .filter((n) => !n.startsWith('.'))
        .sort(),
    ).toEqual(names);
    for (const name of names) {
      const strip = (root: string) => {
        const manifest = JSON.parse(readFileSync(join(manifests(root), name), 'utf8'));
        delete manifest.training_data_updated;
        for (const entry of manifest.training_data) delete entry.inode;
        return manifest;
      };
      expect(strip(sharded)).toEqual(strip(whole));
    }
  });

  it('a whole-root run and a shard run, or shards of different counts, exclude each other (exit 2)', async () => {
    const root = await tempRoot();
    await generateDataRoot(join(root, 'r'), { actors: 3 });
    const manifests = join(root, 'r', 'data', 'actor_manifests');
    // A live holder: this test process, on this host.
    let holder = await holdLock(manifests, '.actor-sync.shard-1-of-2.lock');
    const whole = await run(['sync', '--root', join(root, 'r')]);
    expect(whole.code).toBe(2);
    expect(whole.stderr).toMatch(/\.actor-sync\.shard-1-of-2\.lock, which covers actors this run would write/);
    expect((await run(['sync', '--root', join(root, 'r'), '--shard', '1/3'])).code).toBe(2);
    expect((await run(['sync', '--root', join(root, 'r'), '--shard', '2/2'])).code).toBe(0); // same count: disjoint
    await holder.release();
    holder = await holdLock(manifests);
    expect((await run(['sync', '--root', join(root, 'r'), '--shard', '1/2'])).code).toBe(2);
    await holder.release();
    expect(readdirSync(manifests).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('a usage error exits 2 every time, the worker threads started for it stopped safely', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () => run(['sync', '--root', '/nonexistent/actor-sync'])),
    );
    expect(results.map((r) => r.code)).toEqual(Array(8).fill(2));
  });

  it('a bad shard is a usage error (exit 2)', async () => {
    const root = await tempRoot();
    const r = await run(['sync', '--root', root, '--shard', '3/2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('actor-sync: --shard 3/2: the shard must be from 1 to 2\n');
  });

  it('a bad JOB_COMPLETION_INDEX or ACTOR_SYNC_SHARD_COUNT is a usage error (exit 2) naming the variable, its value and its range', async () => {
    const root = await tempRoot();
    for (const [args, env, message] of [
      [
        ['--shard-count', '2'],
        { JOB_COMPLETION_INDEX: 'abc' },
        'JOB_COMPLETION_INDEX=abc: expected a whole number from 0 to 1 (0-based, with --shard-count 2)',
      ],
      [
        [],
        { JOB_COMPLETION_INDEX: '0', ACTOR_SYNC_SHARD_COUNT: 'zz' },
        'ACTOR_SYNC_SHARD_COUNT=zz: expected a whole number of at least 1',
      ],
      [
        ['--shard-count', '3'],
        { JOB_COMPLETION_INDEX: '3' },
        'JOB_COMPLETION_INDEX=3: expected a whole number from 0 to 2 (0-based, with --shard-count 3)',
      ],
    ] as const) {
      const r = await run(['sync', '--root', root, ...args], env);
      expect(r.code, message).toBe(2);
      expect(r.stderr).toBe(`actor-sync: ${message}\n`);
    }
  });
});
