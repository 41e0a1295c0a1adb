/** The built CLI as a process, with the test S3 server's credentials in its environment. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { TEST_CREDENTIALS } from './s3.js';

const CLI = resolve(import.meta.dirname, '../../dist/src/cli/main.js');
const env = { AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-west-1' };

/** Runs `actor-sync ARGS`; resolves with its exit code and output. */
export function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

