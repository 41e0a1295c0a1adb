/** For the benches: a child process run to its end, its output collected and its wall time measured. */
import { spawn } from 'node:child_process';

export interface Timed {
  seconds: number;
  stdout: string;
  stderr: string;
  code: number | null;
}

export function timed(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  return new Promise((done) => {
    const start = performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ seconds: (performance.now() - start) / 1000, stdout, stderr, code }));
  });
}
