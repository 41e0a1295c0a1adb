/**
 * The lstats of a warm actor list, half taken in a worker thread (parallel-lstat.ts): each path's answer is
 * what this thread's lstat says, whichever thread took it, including after a change and after the thread stops.
 */
import { lstatSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parallelLstat, type ParallelLstat } from '../../src/server/parallel-lstat.js';
import { tempRoot } from '../helpers/root.js';

const FIELDS = ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs', 'mode'] as const;

function here(path: string) {
  const stats = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  return stats && Object.fromEntries(FIELDS.map((field) => [field, stats[field]]));
}

/** A folder of 20 files, a subfolder, a symlink and a missing path: every kind of answer, on both halves. */
async function paths(): Promise<string[]> {
  const dir = join(await tempRoot(), 'files');
  await mkdir(join(dir, 'sub'), { recursive: true });
  const files = Array.from({ length: 20 }, (_, i) => join(dir, `${i}.png`));
  for (const [i, file] of files.entries()) await writeFile(file, Buffer.alloc(i * 10));
  await symlink(files[0]!, join(dir, 'link.png'));
  return [join(dir, 'sub'), join(dir, 'missing.png'), ...files, join(dir, 'link.png'), join(dir, 'gone.png')];
}

describe('parallelLstat', () => {
  let lstats: ParallelLstat | undefined;
  afterEach(async () => void (await lstats?.close()));

  it('answers each path as lstat does here, on both threads, and a changed file as it is now', async () => {
    lstats = parallelLstat();
    const all = await paths();
    const first = await lstats.all(all);
    for (const path of all) expect(first(path) && Object.fromEntries(FIELDS.map((field) => [field, first(path)![field]])), path).toEqual(here(path));

    const last = all.at(-3)!; // in the half the worker thread takes
    await writeFile(last, Buffer.alloc(12345));
    const second = await lstats.all(all);
    expect(second(last)?.size).toBe(12345n);
    expect(second(last)?.ctimeNs).toBe(here(last)!.ctimeNs);
  });

  it('answers on this thread once the worker thread is stopped', async () => {
    lstats = parallelLstat();
    const all = await paths();
    await lstats.close();
    const answer = await lstats.all(all);
    expect(answer(all.at(-3)!)?.size).toBe(here(all.at(-3)!)!.size);
    expect(answer(all[1]!)).toBeUndefined();
  });
});
