import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempRoot } from './helpers/root.js';

const SCRIPT = resolve(import.meta.dirname, '../scripts/long-functions.mjs');
const run = promisify(execFile);

/** A function spanning exactly `lines` lines, signature and closing brace included. */
function functionOf(name: string, lines: number): string {
  const body = Array.from({ length: lines - 2 }, (_, i) => `  const v${i} = ${i};`);
  return [`export function ${name}(): void {`, ...body, '}', ''].join('\n');
}

/** Runs the script in `cwd`; its exit code and output, whether it failed or not. */
async function longFunctions(
  cwd: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('scripts/long-functions.mjs', () => {
  it('exits 1 naming each function over 60 lines, methods included; one of exactly 60 passes', async () => {
    const dir = await tempRoot();
    await mkdir(join(dir, 'src', 'part'), { recursive: true });
    await mkdir(join(dir, 'workers'));
    await writeFile(join(dir, 'src', 'ok.ts'), functionOf('atLimit', 60));
    await writeFile(join(dir, 'src', 'part', 'long.ts'), `${functionOf('short', 3)}${functionOf('tooLong', 61)}`);
    const method = functionOf('method', 70).replace('export function method(): void', '  method(): void');
    await writeFile(join(dir, 'workers', 'task.ts'), `export class Task {\n${method}}\n`);

    const found = await longFunctions(dir);
    expect(found.code).toBe(1);
    expect(found.stdout.trim().split('\n').sort()).toEqual([
      'src/part/long.ts:4 tooLong 61 lines',
      'workers/task.ts:2 method 70 lines',
    ]);
    expect(found.stderr).toContain('2 function(s) over 60 lines');
  });

  it('exits 0 when every function is within the limit, and --max sets the limit', async () => {
    const dir = await tempRoot();
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src', 'a.ts'), functionOf('forty', 40));

    const within = await longFunctions(dir, 'src');
    expect(within).toMatchObject({ code: 0 });
    expect(within.stdout).toContain('no function over 60 lines in src');
    const lower = await longFunctions(dir, '--max', '39', 'src');
    expect(lower.code).toBe(1);
    expect(lower.stdout).toContain('src/a.ts:1 forty 40 lines');
  });
});
