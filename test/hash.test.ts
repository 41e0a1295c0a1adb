/** Stat + streaming MD5 (the workers' I/O): reuse only on a matching stat token, and files that vanish or change kind after the listing. */
import { execFileSync } from 'node:child_process';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashFiles } from '../workers/hash.js';
import { tempRoot } from './helpers/root.js';
import { md5 } from './helpers/values.js';

describe('hashFiles', () => {
  it('hashes in chunks (a file larger than the reused buffer) and reports the stat token', async () => {
    const dir = await tempRoot();
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const path = join(dir, 'big.png');
    writeFileSync(path, big);
    const [result] = hashFiles({ files: [{ path }], racyFromNs: null, verify: false });
    const stats = statSync(path, { bigint: true });
    expect(result).toEqual({
      ok: true,
      md5: md5(big),
      reused: false,
      size: big.length,
      mtimeNs: stats.mtimeNs.toString(),
      inode: Number(stats.ino),
    });
  });

  it('tells how many bytes it read as it reads them (the progress of a large file), one file or four in lanes', async () => {
    const dir = await tempRoot();
    const sizes = [3 * 1024 * 1024 + 17, 1024 * 1024, 5];
    const paths = sizes.map((_size, i) => join(dir, `${i}.png`));
    for (const [i, path] of paths.entries()) writeFileSync(path, Buffer.alloc(sizes[i]!, i));
    for (const files of [[paths[0]!], paths]) {
      const reads: number[] = [];
      const results = hashFiles({ files: files.map((path) => ({ path })), racyFromNs: null, verify: false }, (bytes) =>
        reads.push(bytes),
      );
      expect(results.every((r) => r.ok)).toBe(true);
      expect(reads.reduce((a, b) => a + b, 0)).toBe(sizes.slice(0, files.length).reduce((a, b) => a + b, 0));
      expect(reads.length).toBeGreaterThanOrEqual(4); // the 3 MB file in several reads, not once at its end
    }
  });

  it('reuses a recorded hash only when size, mtime and inode all match and the file is not racily clean', async () => {
    const dir = await tempRoot();
    const path = join(dir, 'a.png');
    writeFileSync(path, 'bytes');
    const s = statSync(path, { bigint: true });
    const token = { size: 5, mtimeNs: s.mtimeNs.toString(), inode: Number(s.ino) };
    const fake = 'f'.repeat(32);
    const run = (reuse: typeof token, racyFromNs: string | null = null, verify = false) =>
      hashFiles({ files: [{ path, reuse: { ...reuse, md5: fake } }], racyFromNs, verify })[0];
    expect(run(token)).toMatchObject({ reused: true, md5: fake });
    expect(run({ ...token, size: 6 })).toMatchObject({ reused: false, md5: md5('bytes') });
    expect(run({ ...token, inode: token.inode + 1 })).toMatchObject({ reused: false });
    expect(run({ ...token, mtimeNs: (s.mtimeNs + 1n).toString() })).toMatchObject({ reused: false });
    expect(run(token, s.mtimeNs.toString())).toMatchObject({ reused: false, md5: md5('bytes') }); // racily clean
    expect(run(token, (s.mtimeNs + 1n).toString())).toMatchObject({ reused: true });
    expect(run(token, null, true)).toMatchObject({ reused: false }); // --verify
  });

  it('reports a file that vanished after the listing, and one replaced by a FIFO, without opening it for good', async () => {
    const dir = await tempRoot();
    const gone = join(dir, 'gone.png');
    const fifo = join(dir, 'fifo.png');
    writeFileSync(gone, 'x');
    rmSync(gone);
    execFileSync('mkfifo', [fifo]);
    const [vanished, notFile] = hashFiles({ files: [{ path: gone }, { path: fifo }], racyFromNs: null, verify: false });
    expect(vanished).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(notFile).toMatchObject({ ok: false, code: 'ENOTFILE', reason: 'not a regular file; skipped' });
  });
});
