import fs from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CommitError, commitFile, isTempFileName, removeStaleTemps, tempNameFor } from '../../src/manifest/commit.js';
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
 * `commitFile` reach `fs` through the callback API, so the failing callback is what they see. A commit
 * renames twice: write-file-atomic's own temp onto ours, then ours over the target.
 */
function failNth(method: FsMethod, nth: number, code: string): { mock: { calls: unknown[][] } } {
  const original = fs[method] as unknown as (...args: unknown[]) => unknown;
  let calls = 0;
  return vi.spyOn(fs, method).mockImplementation(((...args: unknown[]) => {
    const counted = !PATH_METHODS.includes(method) || String(args[0]).startsWith(dir);
    if (counted && ++calls === nth) {
      const callback = args.at(-1) as (error: Error) => void;
      const error = Object.assign(new Error(`${code}: injected fault, ${method}`), {
        code,
        syscall: method,
        errno: -1,
      });
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

  it('replaces a target that is a symlink where it leads, keeping the symlink', async () => {
    const real = join(dir, 'real.json');
    await writeFile(real, OLD);
    await symlink(real, target);
    await commitFile(target, NEW);
    expect(await readFile(real, 'utf8')).toBe(NEW);
    expect((await fs.promises.lstat(target)).isSymbolicLink()).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['0000_manifest.json', 'real.json']);
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
    ["renaming write-file-atomic's temp file onto ours", 'rename', 1, 'EBUSY'],
    ['renaming over the target', 'rename', 2, 'EBUSY'],
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

/** Every temp name a real commit of `name` in the test folder makes (the sources of its renames). */
async function realTempNames(name: string): Promise<string[]> {
  const rename = vi.spyOn(fs, 'rename');
  await commitFile(join(dir, name), 'x');
  const names = rename.mock.calls.map((call) => String(call[0]).slice(dir.length + 1));
  rename.mockRestore();
  return names;
}

describe('a name the file system cannot hold', () => {
  it('is said as such (the temp file beside it is what is too long), with no advice about free space', async () => {
    const long = join(dir, `${'a'.repeat(235)}_manifest.json`); // 249 bytes: the temp file's name is not
    const error = await rejection(commitFile(long, NEW), CommitError);
    expect(error.code).toBe('ENAMETOOLONG');
    expect(error.message).toBe(
      `${long}: its name is too long for the file system: 249 bytes, and the temp file written beside it needs 48 more (most file systems allow 255 in all); left unchanged`,
    );
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('isTempFileName', () => {
  it.each([
    '0000_manifest.json',
    'response.json',
    'x.jpg',
    '0000_european_16_male_10.PNG',
    'Ünï cödé 1.webp',
    'sync-cache-0123.json',
  ])("recognises every temp name a commit of %s makes, and tempNameFor's", async (name) => {
    const names = await realTempNames(name);
    expect(names).toHaveLength(2);
    for (const temp of [...names, tempNameFor(name)]) {
      expect(temp).toMatch(new RegExp(`^\\.actor-sync-${process.pid}-[0-9a-f]{12}\\.`));
      expect(isTempFileName(temp), temp).toBe(true);
    }
  });

  it('names each temp file anew', () => {
    expect(new Set(Array.from({ length: 100 }, () => tempNameFor('x.jpg'))).size).toBe(100);
  });

  // What people and other tools name their files: never taken for ours.
  it.each([
    '0000_manifest.json',
    'response.json',
    'x.jpg',
    'notes.json.bak',
    'notes.json.1',
    'x.png.1',
    'response.json.1',
    '0001_manifest.json.20251017', // a dated backup
    '0000_manifest.json.3141592653', // write-file-atomic's own naming
    'x.png.tmp',
    '.x.png.tmp',
    '0000_manifest.json.tmp-1760000000abcdef', // atomically's naming
    '.actor-sync.lock',
    '.actor-sync.lock.2f1c0d3e-5b6a-4c7d-8e9f-0a1b2c3d4e5f.tmp', // a half-built lock (lock.ts cleans those)
    'actor-sync-4242-0123456789ab.x.png.tmp', // not hidden
    '.actor-sync-4242-0123456789ab.x.png', // no .tmp
    '.actor-sync-0-0123456789ab.x.png.tmp', // no pid is 0
    '.actor-sync-04242-0123456789ab.x.png.tmp',
    '.actor-sync-4242-0123456789AB.x.png.tmp', // lower-case hex only
    '.actor-sync-4242-0123456789a.x.png.tmp', // 11 hex digits
    '.actor-sync-4242-0123456789ab.x.png.tmp.0123',
    '.actor-sync-4242-0123456789ab.x.png.tmp.4294967296x',
  ])('rejects %s', (name) => {
    expect(isTempFileName(name)).toBe(false);
  });
});

describe('removeStaleTemps', () => {
  const keep = [
    '0000_manifest.json',
    'response.json',
    'x.jpg',
    'notes.json.bak',
    'notes.json.1',
    '0001_manifest.json.20251017',
    'x.jpg.1',
    '0000_manifest.json.123',
  ];

  /**
   * A failure at rename #`renameNth` (1: write-file-atomic's, 2: ours over the target) whose cleanup fails
   * too, as a crash would leave it. Unlink #1 is write-file-atomic's (made whether its rename failed or
   * not), #2 is ours.
   */
  async function leaveRealTemp(renameNth: 1 | 2): Promise<string> {
    const renamed = failNth('rename', renameNth, 'EIO');
    failNth('unlink', renameNth, 'EIO');
    await expect(commitFile(target, NEW)).rejects.toMatchObject({ code: 'EIO' });
    const temp = String(renamed.mock.calls.at(-1)?.[0]);
    vi.restoreAllMocks();
    return temp;
  }

  it.each([1, 2] as const)(
    'removes the temp file a commit failing at rename #%i left behind, and nothing else',
    async (renameNth) => {
      for (const name of keep) await writeFile(join(dir, name), OLD);
      const temp = await leaveRealTemp(renameNth);
      expect(fs.existsSync(temp)).toBe(true);

      expect(await removeStaleTemps(dir)).toEqual([temp]);

      expect((await readdir(dir)).sort()).toEqual([...keep].sort());
      expect(await readFile(target, 'utf8')).toBe(OLD);
    },
  );

  it('removes only the temp files of targets the caller owns (shards share a folder)', async () => {
    const ours = join(dir, tempNameFor('0000_manifest.json'));
    const theirs = join(dir, tempNameFor('0001_manifest.json'));
    for (const path of [ours, theirs]) await writeFile(path, NEW);
    const removed = await removeStaleTemps(dir, { owns: (name) => name === '0000_manifest.json' });
    expect(removed).toEqual([ours]);
    expect(await readdir(dir)).toEqual([theirs.slice(dir.length + 1)]);
  });

  it('with olderThanMs, removes only temp files modified before that instant (the lock was taken)', async () => {
    const lockTakenMs = Math.floor(Date.now() / 1000) * 1000; // whole seconds: utimes takes them exactly
    const [before, same, after] = await Promise.all(
      [-60_000, 0, 60_000].map(async (offset) => {
        const path = join(dir, tempNameFor('x.jpg'));
        await writeFile(path, 'half');
        await utimes(path, (lockTakenMs + offset) / 1000, (lockTakenMs + offset) / 1000);
        return path;
      }),
    );
    expect(await removeStaleTemps(dir, { olderThanMs: lockTakenMs })).toEqual([before]);
    expect((await readdir(dir)).sort()).toEqual([same!, after!].map((path) => path.slice(dir.length + 1)).sort());
  });

  it('leaves folders and symlinks named like temp files', async () => {
    const folder = tempNameFor('0000_manifest.json');
    const link = tempNameFor('0001_manifest.json');
    await mkdir(join(dir, folder));
    await writeFile(join(dir, 'real.json'), OLD);
    await fs.promises.symlink(join(dir, 'real.json'), join(dir, link));
    expect(await removeStaleTemps(dir)).toEqual([]);
    expect(await removeStaleTemps(dir, { olderThanMs: Date.now() + 60_000 })).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual([folder, link, 'real.json'].sort());
  });

  it('finds nothing in a missing folder', async () => {
    expect(await removeStaleTemps(join(dir, 'missing'))).toEqual([]);
  });
});
