/**
 * The worker pool's lifetime. Stopping a thread while Node links its ES modules aborts the whole process on
 * Node 20 (a fatal V8 error, no exception to catch), so a pool must be safe to destroy at any instant after
 * it is created: a one-actor run can finish before its second thread has loaded.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROGRESS_BYTES } from '../workers/hash.js';
import { createPool } from '../src/engine/pool.js';
import { pollUntil } from './helpers/cli.js';

const POOL = resolve(import.meta.dirname, '../dist/src/engine/pool.js');
/**
 * The start-up test's timeout: sixty pools started and destroyed, with delays spread over 1.5 start-up times,
 * take minutes on a loaded machine, where one start-up takes seconds. Only a hang reaches it.
 */
const STARTUPS_MS = 10 * 60_000;

/** The files an ES module loads before it runs, followed from `entry`, and the packages they name. */
function staticImports(entry: string): { files: string[]; bare: string[]; onDemand: string[] } {
  const files = new Set<string>();
  const bare = new Set<string>();
  const onDemand: string[] = [];
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [, spec] of text.matchAll(/(?:^|[;\s])(?:import|export)\s*(?:[^'";]*?from\s*)?["']([^"']+)["']/g))
      spec!.startsWith('.') ? visit(resolve(dirname(file), spec!)) : bare.add(spec!);
    for (const [, spec] of text.matchAll(/\bimport\(\s*["']([^"']+)["']/g)) onDemand.push(spec!);
  };
  visit(entry);
  return { files: [...files], bare: [...bare], onDemand };
}

/** Runs `script` (an ES module) in a fresh Node process; resolves with how it ended and its stderr. */
function node(script: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((done, fail) => {
    child.once('error', fail);
    child.once('close', (code, signal) => done({ code, signal, stderr }));
  });
}

describe('the worker pool', () => {
  it('hashes on real threads, and is destroyed right after it is created', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'actor-sync-pool-'));
    const file = join(dir, 'a.png');
    await writeFile(file, 'abc');
    const pool = createPool(2);
    expect(pool.threads).toBe(2);
    const [result] = await pool.hash({ files: [{ path: file }], racyFromNs: null, verify: false });
    expect(result).toMatchObject({ ok: true, md5: '900150983cd24fb0d6963f7d28e17f72', size: 3, reused: false });
    await pool.destroy();
    await createPool(2).destroy();
    await rm(dir, { recursive: true });
  });

  it('reports the bytes its threads read for hashing every few MB, while a large file is still being read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'actor-sync-pool-'));
    const file = join(dir, 'large.png');
    await writeFile(file, Buffer.alloc(20 << 20, 1));
    const pool = createPool(1);
    const reports: number[] = [];
    pool.onHashed!((bytes) => reports.push(bytes));
    const [result] = await pool.hash({ files: [{ path: file }], racyFromNs: null, verify: false });
    expect(result).toMatchObject({ ok: true, size: 20 << 20 });
    await pool.destroy(); // every message of the thread has arrived once it is stopped
    expect(reports).toEqual([PROGRESS_BYTES, PROGRESS_BYTES]); // 16 of the 20 MB; the rest with the next reads
    await rm(dir, { recursive: true });
  });

  it("starts its threads on the build's own files: nothing from node_modules or the sources, nothing loaded on demand", () => {
    const { files, bare, onDemand } = staticImports(resolve(import.meta.dirname, '../dist/workers/tasks.js'));
    expect(files.length).toBeGreaterThan(1); // the entry and the chunks it shares with the main thread
    expect(files.every((file) => file.startsWith(resolve(import.meta.dirname, '../dist/')))).toBe(true);
    expect(bare.length).toBeGreaterThan(0);
    expect(bare.filter((specifier) => !specifier.startsWith('node:'))).toEqual([]);
    // What a thread may load later, when a task needs it: fast-glob (a chunk shared with discover.ts, never
    // called in a thread) and the SDK's CRC64 (an object whose ETag is no MD5).
    expect(onDemand.length).toBeGreaterThan(0);
  });

  it(
    'is destroyed at every instant of its threads’ start-up without aborting the process',
    async () => {
      // One process, many pools: each destroyed after a delay spread over the time its threads take to load.
      const script = `
      const { createPool } = await import(${JSON.stringify(POOL)});
      const start = performance.now();
      const probe = createPool(2);
      await probe.hash({ files: [], racyFromNs: null, verify: false });
      await probe.destroy();
      const loadMs = Math.max(20, performance.now() - start);
      for (let i = 0; i < 60; i++) {
        const pool = createPool(2);
        await new Promise((r) => setTimeout(r, (i / 60) * loadMs * 1.5));
        await pool.destroy();
      }`;
      const ended = await node(script);
      expect(ended.stderr).not.toMatch(/FATAL ERROR/);
      expect({ code: ended.code, signal: ended.signal }).toEqual({ code: 0, signal: null });
    },
    STARTUPS_MS,
  );
});

/** The OS threads of this process. */
function osThreads(): number {
  return readdirSync('/proc/self/task').length;
}

/**
 * Far beyond the time threads take to start or stop, even on a loaded two-core machine where loading one
 * thread's modules takes seconds: only threads that never start or never stop reach it.
 */
const THREADS_MS = 120_000;

/** Resolves once `check` holds; fails after {@link THREADS_MS}. */
function until(check: () => boolean): Promise<void> {
  return pollUntil(check.toString(), check, { timeoutMs: THREADS_MS, intervalMs: 20 });
}

describe('a pool destroyed', () => {
  it(
    'stops its threads, whether or not they finished loading',
    async () => {
      // The process's OS threads (Linux) fall back to what they were. The count is taken after a pool has come
      // and gone, so threads Node starts lazily once are in it.
      await createPool(1).destroy();
      const before = osThreads();
      const loaded = createPool(3);
      await until(() => osThreads() >= before + 3);
      await loaded.destroy();
      await until(() => osThreads() <= before);
      await createPool(3).destroy(); // at once: pool.ts lets each thread finish loading first
      await until(() => osThreads() <= before);
    },
    4 * THREADS_MS,
  );
});
