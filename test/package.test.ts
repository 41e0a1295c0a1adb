/**
 * The published package alone, installed as the Dockerfile's runtime stage installs it: `npm pack`, the
 * tarball unpacked with the lockfile beside it, `npm ci --omit=dev`. No dev dependency, source file or test
 * build may be needed at run time.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { generateDataRoot } from '../demo/generate.js';
import { startFaultProxy, startS3Server } from './helpers/s3.js';
import { S3_ENV } from './helpers/s3-cli.js';
import { tempRoot } from './helpers/root.js';

const exec = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const DEV_ONLY = Object.keys(
  JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).devDependencies as Record<string, string>,
);

/** Runs the installed bin; never throws, so a failure shows its output. */
async function installed(app: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [join(app, 'dist/src/cli/main.js'), ...args], {
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('the packed package', () => {
  it('installs with production dependencies only, and runs --help, a sync and a remote check from there', async () => {
    const dir = await tempRoot();
    // --ignore-scripts: the package has no pack scripts, and `npm test`'s environment must not start any.
    const packed = await exec('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir], {
      cwd: REPO,
    });
    const tarball = join(dir, packed.stdout.trim().split('\n').pop()!);
    const app = join(dir, 'app');
    await mkdir(app);
    await exec('tar', ['-xzf', tarball, '-C', app, '--strip-components=1']);
    await copyFile(join(REPO, 'package-lock.json'), join(app, 'package-lock.json'));
    // The tarballs are in npm's cache since the repository's own `npm ci`: no download is needed.
    await exec('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
      cwd: app,
    });

    expect(DEV_ONLY.filter((name) => existsSync(join(app, 'node_modules', name)))).toEqual([]);
    // One dist/: the bin, the exports and the worker's entry load the same chunks.
    expect((await readdir(join(app, 'dist'))).sort()).toEqual(['src', 'workers']);
    expect((await readdir(join(app, 'dist/workers'))).sort()).toEqual(['tasks.js', 'tasks.js.map']);
    expect(existsSync(join(app, 'src'))).toBe(false);

    const help = await installed(app, ['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/\bsync\b[\s\S]*\bserve\b/);

    const root = join(dir, 'root');
    const generated = await generateDataRoot(root, { actors: 3 });
    const sync = await installed(app, ['sync', '--root', root, '--workers', '2', '--json']);
    expect(sync.stderr).toBe('');
    expect(sync.code).toBe(0);
    const summary = JSON.parse(sync.stdout) as { actors: { processed: number; failed: number } };
    expect(summary.actors).toMatchObject({ processed: generated.actors.length, failed: 0 });

    // --remote loads the AWS SDK: it must be among the production dependencies.
    const proxy = await startFaultProxy((await startS3Server(['story-boards-assets'])).endpoint);
    const remote = await installed(
      app,
      ['status', '--root', root, '--remote', '--endpoint', proxy.endpoint, '--force-path-style', '--json'],
      S3_ENV,
    );
    expect(remote.stderr).toBe('');
    expect(remote.code).toBe(0);
    expect(JSON.parse(remote.stdout).s3_requests.list).toBeGreaterThan(0);
    expect(proxy.requests.some((request) => /list-type=2/.test(request.url))).toBe(true);
  });
});
