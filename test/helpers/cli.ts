/**
 * The real CLI as a child process (built `dist/src/cli/main.js`), and what the process tests check on disk
 * afterwards: leftover files in the manifests folder, manifests that must parse, manifests compared
 * without the fields that differ between two copies of one root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

const MAIN = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
export { LOCK_NAME } from './crash.js';

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
  for (const child of running.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Starts `actor-sync ARGS` (with `env` added to this process's); stdin closed, stdout and stderr collected. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, [MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
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

// The on-disk checks live in crash.ts (plain Node, no vitest), shared with `npm run soak`.
export { comparable, copyRoot, imageMtimes, leftovers, manifestsDirOf, readManifests, watchCommits } from './crash.js';

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
    const deadline = setTimeout(
      () => stop(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
    child?.on('exit', onExit);
    if (check()) stop();
  });
}
