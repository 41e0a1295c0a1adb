/**
 * The real CLI as a child process (built `dist/src/cli/main.js`), and what the process tests check on disk
 * afterwards: leftover files in the manifests folder, manifests that must parse, manifests compared
 * without the fields that differ between two copies of one root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { IMAGE_EXTENSION } from '../../src/discover.js';

const MAIN = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
export const LOCK_NAME = '.actor-sync.lock';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  /** Settles when the process has exited and its output is read. */
  done: Promise<CliResult>;
}

const running: ChildProcess[] = [];

// A failed test must not leave a run behind (SIGKILL also ends a SIGSTOPped one).
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Starts `actor-sync ARGS` (with `env` added to this process's); stdin closed, stdout and stderr collected. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  running.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    // 'close', not 'exit': both pipes are drained by then.
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Runs `actor-sync ARGS` to the end. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

export function manifestsDirOf(root: string): string {
  return join(root, 'data', 'actor_manifests');
}

/** A copy of a data root that keeps every file's mtime (manifests record them as `modified_*`). */
export function copyRoot(from: string, to: string): string {
  fs.cpSync(from, to, { recursive: true, preserveTimestamps: true });
  return to;
}

/**
 * Every image under `<root>/data/actors`, relative path → mtime in ns. Only images: their mtimes end up in
 * manifests, and the generator gives them whole-millisecond mtimes, which a copy keeps exactly (the legacy
 * JSON files have ns mtimes from their writing, which `cpSync` rounds to ms).
 */
export function imageMtimes(root: string): Map<string, bigint> {
  const actors = join(root, 'data', 'actors');
  const result = new Map<string, bigint>();
  for (const entry of fs.readdirSync(actors, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !IMAGE_EXTENSION.test(entry.name)) continue;
    const path = join(entry.parentPath, entry.name);
    result.set(relative(actors, path), fs.statSync(path, { bigint: true }).mtimeNs);
  }
  return result;
}

/** Names in the manifests folder that are neither a manifest nor the run lock (temp files, above all). */
export function leftovers(manifestsDir: string): string[] {
  return fs.readdirSync(manifestsDir).filter((name) => !name.endsWith('_manifest.json') && name !== LOCK_NAME);
}

/** Every `*_manifest.json`, parsed; a file that is not valid JSON throws an error naming it. */
export function readManifests(manifestsDir: string): Map<string, any> {
  const result = new Map<string, any>();
  for (const name of fs.readdirSync(manifestsDir).filter((n) => n.endsWith('_manifest.json')).sort()) {
    const text = fs.readFileSync(join(manifestsDir, name), 'utf8');
    try {
      result.set(name, JSON.parse(text));
    } catch (error) {
      throw new Error(`${name} is not valid JSON (${(error as Error).message}); it holds ${text.length} characters`);
    }
  }
  return result;
}

/**
 * A manifest without what legitimately differs between two runs on two copies of one root: the commit
 * time, and each entry's stat token (`mtime_ns`, `inode`; the copy has new inodes). `modified_*` stay:
 * the copies keep mtimes.
 */
export function comparable(manifest: any): any {
  const copy = structuredClone(manifest);
  delete copy.training_data_updated;
  for (const entry of copy.training_data ?? []) {
    delete entry.mtime_ns;
    delete entry.inode;
  }
  return copy;
}

/**
 * Calls `onCommit` with the number of distinct manifests committed so far in `manifestsDir`, each time a
 * manifest is renamed into place (a commit's rename shows up as an event for the manifest's own name).
 * Returns a function that stops watching.
 */
export function watchCommits(manifestsDir: string, onCommit: (count: number, name: string) => void): () => void {
  const committed = new Set<string>();
  const watcher = fs.watch(manifestsDir, (_event, name) => {
    if (typeof name !== 'string' || !name.endsWith('_manifest.json') || committed.has(name)) return;
    committed.add(name);
    onCommit(committed.size, name);
  });
  return () => watcher.close();
}

/**
 * Polls `check` every `intervalMs` until it returns true; rejects after `timeoutMs`, or as soon as
 * `child` exits (then the thing waited for can no longer happen).
 */
export function pollUntil(
  what: string,
  check: () => boolean,
  options: { child?: ChildProcess; timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const { child, timeoutMs = 30_000, intervalMs = 5 } = options;
  return new Promise((resolve, reject) => {
    const stop = (error?: Error) => {
      clearInterval(timer);
      clearTimeout(deadline);
      child?.off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    const onExit = (code: number | null, signal: string | null) =>
      stop(new Error(`the process exited (code ${code}, signal ${signal}) before ${what}`));
    const timer = setInterval(() => {
      if (check()) stop();
    }, intervalMs);
    const deadline = setTimeout(() => stop(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    child?.on('exit', onExit);
    if (check()) stop();
  });
}
