import fs from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CommitError, commitFile, isTempFileName, removeStaleTemps } from '../../src/manifest/commit.js';
import { rejection } from '../helpers/values.js';

const OLD = '{\n  "character_id": "0000",\n  "training_data": []\n}\n';
const NEW = '{\n  "character_id": "0000",\n  "training_data": [{ "filename": "0000_european_16_male_0.jpg" }]\n}\n';

let dir: string;
let target: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'actor-sync-commit-'));
  target = join(dir, '0000_manifest.json');
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

type FsMethod = 'open' | 'write' | 'fsync' | 'close' | 'rename' | 'unlink';
const PATH_METHODS: readonly FsMethod[] = ['open', 'rename', 'unlink'];

/**
 * Makes the `nth` call of `fs[method]` fail with an errno-style error carrying `code`; every other call goes
 * through. Calls naming a path outside the test folder are not counted. write-file-atomic and
 * `commitFile` reach `fs` through the callback API, so the failing callback is what they see.
 */
function failNth(method: FsMethod, nth: number, code: string): void {
  const original = fs[method] as unknown as (...args: unknown[]) => unknown;
  let calls = 0;
  vi.spyOn(fs, method).mockImplementation(((...args: unknown[]) => {
    const counted = !PATH_METHODS.includes(method) || String(args[0]).startsWith(dir);
    if (counted && ++calls === nth) {
      const callback = args.at(-1) as (error: Error) => void;
      const error = Object.assign(new Error(`${code}: injected fault, ${method}`), { code, syscall: method, errno: -1 });
      process.nextTick(callback, error);
      return undefined;
    }
    return original.apply(fs, args);
  }) as never);
}

describe('commitFile', () => {
  it('replaces the content and leaves no temp file', async () => {
    await writeFile(target, OLD);
    await commitFile(target, NEW);
    expect(await readFile(target, 'utf8')).toBe(NEW);
    expect(await readdir(dir)).toEqual(['0000_manifest.json']);
  });

  it('creates a missing target', async () => {
    await commitFile(target, NEW);
    expect(await readFile(target, 'utf8')).toBe(NEW);
    expect(await readdir(dir)).toEqual(['0000_manifest.json']);
  });

  it('writes bytes as they are (pulled images)', async () => {
    const image = join(dir, 'x.jpg');
    const bytes = new Uint8Array([0xff, 0xd8, 0xff, 0x00, 0x80, 0xff, 0xd9]);
    await commitFile(image, bytes);
    expect(new Uint8Array(await readFile(image))).toEqual(bytes);
  });

  it('keeps the mode of an existing target', async () => {
    await writeFile(target, OLD);
    await chmod(target, 0o640);
    await commitFile(target, NEW);
    expect((await stat(target)).mode & 0o777).toBe(0o640);
  });

  it('syncs the folder after the rename', async () => {
    const fsync = vi.spyOn(fs, 'fsync');
    const open = vi.spyOn(fs, 'open');
    await commitFile(target, NEW);
    // First the temp file, then the folder.
    expect(fsync).toHaveBeenCalledTimes(2);
    expect(open.mock.calls.at(-1)?.[0]).toBe(dir);
  });

  // Steps before the rename: the original must survive byte for byte and the temp file must be gone.
  it.each([
    ['opening the temp file', 'open', 1, 'EMFILE'],
    ['opening the temp file, denied', 'open', 1, 'EACCES'],
    ['writing the temp file', 'write', 1, 'EIO'],
    ['writing the temp file, disk full', 'write', 1, 'ENOSPC'],
    ['syncing the temp file', 'fsync', 1, 'EIO'],
    ['closing the temp file', 'close', 1, 'EIO'],
    ['renaming over the target', 'rename', 1, 'EBUSY'],
  ] as const)('a failure %s leaves the original intact and no temp file', async (_step, method, nth, code) => {
    await writeFile(target, OLD);
    const before = await readFile(target);
    failNth(method, nth, code);

    const error = await rejection(commitFile(target, NEW), CommitError);

    expect(error.code).toBe(code);
    expect(error.replaced).toBe(false);
    expect(error.message).toContain(target);
    expect(error.message).toContain('left unchanged');
    vi.restoreAllMocks();
    expect((await readFile(target)).equals(before)).toBe(true);
    expect(await readdir(dir)).toEqual(['0000_manifest.json']);
  });

  // The folder is opened and synced only after the rename, which cannot be undone: the target already
  // holds the new content. The error says so (`replaced`), so no caller treats it as durable.
  it.each([
    ['opening the folder', 'open', 2, 'EACCES'],
    ['syncing the folder', 'fsync', 2, 'EIO'],
  ] as const)('a failure %s rejects after the new content is in place', async (_step, method, nth, code) => {
    await writeFile(target, OLD);
    failNth(method, nth, code);

    const error = await rejection(commitFile(target, NEW), CommitError);

    expect(error.code).toBe(code);
    expect(error.replaced).toBe(true);
    expect(error.message).toContain(target);
    vi.restoreAllMocks();
    expect(await readFile(target, 'utf8')).toBe(NEW);
    expect(await readdir(dir)).toEqual(['0000_manifest.json']);
  });
});

/** The temp names the real library makes for `name` in the test folder, captured as it creates them. */
async function realTempNames(name: string, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    await writeFileAtomic(join(dir, name), `${i}`, { tmpfileCreated: (tmp) => void names.push(tmp.slice(dir.length + 1)) });
  }
  return names;
}

describe('a name the file system cannot hold', () => {
  it('is said as such (the temp file beside it is what is too long), with no advice about free space', async () => {
    const long = join(dir, `${'a'.repeat(235)}_manifest.json`); // 249 bytes: the temp file's name is not
    const error = await rejection(commitFile(long, NEW), CommitError);
    expect(error.code).toBe('ENAMETOOLONG');
    expect(error.message).toBe(`${long}: its name is too long for the file system: 249 bytes, and up to 11 more for the temp file written beside it (most file systems allow 255); left unchanged`);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('isTempFileName', () => {
  it.each(['0000_manifest.json', 'response.json', 'x.jpg', '0000_european_16_male_10.PNG', 'Ünï cödé 1.webp'])(
    'recognises the temp names write-file-atomic makes for %s',
    async (name) => {
      const names = await realTempNames(name, 20);
      expect(names).toHaveLength(20);
      for (const temp of names) {
        expect(temp.startsWith(`${name}.`)).toBe(true);
        expect(isTempFileName(temp)).toBe(true);
      }
    },
  );

  it.each([
    '0000_manifest.json',
    'response.json',
    'x.jpg',
    'notes.json.bak',
    'notes.json.123', // not a target this tool writes
    'prompt_metadata.json.123',
    'x.txt.123',
    '.x.jpg.123', // hidden files are never images here
    'x.jpg.', // no number
    'x.jpg.0123', // the library prints numbers without leading zeros
    'x.jpg.4294967296', // more than 32 bits
    'x.jpg.12ab', // decimal, not hex
    '.123',
  ])('rejects %s', (name) => {
    expect(isTempFileName(name)).toBe(false);
  });
});

describe('removeStaleTemps', () => {
  const keep = ['0000_manifest.json', 'response.json', 'x.jpg', 'notes.json.bak', 'notes.json.123'];

  async function leaveRealTemp(): Promise<string> {
    // A crash between write and rename: the rename fails and so does the library's own cleanup.
    let temp = '';
    failNth('rename', 1, 'EIO');
    failNth('unlink', 1, 'EIO');
    await expect(
      writeFileAtomic(target, NEW, { tmpfileCreated: (tmp) => void (temp = tmp) }),
    ).rejects.toMatchObject({ code: 'EIO' });
    vi.restoreAllMocks();
    return temp;
  }

  it('removes a temp file a failed commit left behind, and nothing else', async () => {
    for (const name of keep) await writeFile(join(dir, name), OLD);
    const temp = await leaveRealTemp();
    expect(fs.existsSync(temp)).toBe(true);

    expect(await removeStaleTemps(dir)).toEqual([temp]);

    expect((await readdir(dir)).sort()).toEqual([...keep].sort());
    expect(await readFile(target, 'utf8')).toBe(OLD);
  });

  it('removes only the temp files of targets the caller owns (shards share a folder)', async () => {
    await writeFile(join(dir, '0000_manifest.json.1'), NEW);
    await writeFile(join(dir, '0001_manifest.json.2'), NEW);
    const removed = await removeStaleTemps(dir, { owns: (name) => name === '0000_manifest.json' });
    expect(removed).toEqual([join(dir, '0000_manifest.json.1')]);
    expect(await readdir(dir)).toEqual(['0001_manifest.json.2']);
  });

  it('leaves folders and symlinks named like temp files', async () => {
    await mkdir(join(dir, '0000_manifest.json.1'));
    await writeFile(join(dir, 'real.json'), OLD);
    await fs.promises.symlink(join(dir, 'real.json'), join(dir, '0001_manifest.json.2'));
    expect(await removeStaleTemps(dir)).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(['0000_manifest.json.1', '0001_manifest.json.2', 'real.json']);
  });

  it('finds nothing in a missing folder', async () => {
    expect(await removeStaleTemps(join(dir, 'missing'))).toEqual([]);
  });
});
