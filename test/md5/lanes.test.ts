/** The WebAssembly MD5 lanes: every length around MD5's block and padding boundaries, many files of uneven sizes, and the failures. */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashFiles } from '../../workers/hash.js';
import { LANE_BYTES, lanesAvailable } from '../../src/md5/engine.js';
import { md5FilesInLanes } from '../../workers/md5-lanes.js';
import { tempRoot } from '../helpers/root.js';
import { md5 } from '../helpers/values.js';

const MB = 1 << 20;

describe('md5FilesInLanes', () => {
  it('is available here (WebAssembly SIMD), so the tests below exercise the lanes and not the fallback', () => {
    expect(lanesAvailable()).toBe(true);
  });

  it('agrees with node:crypto for every length around the block, padding and lane-buffer boundaries', async () => {
    const dir = await tempRoot();
    const L = LANE_BYTES;
    const lengths = [
      0,
      1,
      3,
      55,
      56,
      57,
      63,
      64,
      65,
      119,
      120,
      121,
      127,
      128,
      129,
      1000,
      4096,
      L - 65,
      L - 64,
      L - 9,
      L - 8,
      L - 1,
      L,
      L + 1,
      L + 55,
      L + 56,
      2 * L,
      3 * L + 117,
      MB + 7,
    ];
    const contents = lengths.map((n) => randomBytes(n));
    const paths = contents.map((bytes, i) => {
      const path = join(dir, `f${i}.png`);
      writeFileSync(path, bytes);
      return path;
    });
    const outcomes = md5FilesInLanes(paths);
    expect(outcomes.map((o) => (o.ok ? o.md5 : o))).toEqual(contents.map((bytes) => md5(bytes)));
    expect(outcomes.map((o) => (o.ok ? Number(o.stats.size) : -1))).toEqual(lengths);
  });

  it('keeps each file in its own lane when many uneven files share the four lanes, in any order', async () => {
    const dir = await tempRoot();
    const contents = Array.from({ length: 37 }, (_, i) => randomBytes((i * 7919) % 300_000));
    const paths = contents.map((bytes, i) => {
      const path = join(dir, `g${i}.jpg`);
      writeFileSync(path, bytes);
      return path;
    });
    const want = contents.map((bytes) => md5(bytes));
    expect(md5FilesInLanes(paths).map((o) => o.ok && o.md5)).toEqual(want);
    expect(md5FilesInLanes([...paths].reverse()).map((o) => o.ok && o.md5)).toEqual([...want].reverse());
  });

  it('gives a missing file, a folder and a FIFO their errors, and still hashes the files around them', async () => {
    const dir = await tempRoot();
    const a = randomBytes(70_000);
    const b = randomBytes(5);
    writeFileSync(join(dir, 'a.png'), a);
    writeFileSync(join(dir, 'b.png'), b);
    mkdirSync(join(dir, 'folder.png'));
    execFileSync('mkfifo', [join(dir, 'fifo.png')]);
    const outcomes = md5FilesInLanes(
      ['a.png', 'gone.png', 'folder.png', 'fifo.png', 'b.png'].map((name) => join(dir, name)),
    );
    expect(outcomes[0]).toMatchObject({ ok: true, md5: md5(a) });
    expect(outcomes[1]).toMatchObject({ ok: false, changed: false, error: { code: 'ENOENT' } });
    expect(outcomes[2]).toMatchObject({ ok: false, changed: false, error: { code: 'ENOTFILE' } });
    expect(outcomes[3]).toMatchObject({ ok: false, changed: false, error: { code: 'ENOTFILE' } });
    expect(outcomes[4]).toMatchObject({ ok: true, md5: md5(b) });
  });

  it('marks a file whose bytes disagree with its size as changed, and hashFiles gives up after three tries', () => {
    // A /proc file says it is empty and reads as text: the same as a file written while it was read.
    expect(md5FilesInLanes(['/proc/self/status'])).toEqual([{ ok: false, changed: true }]);
    expect(hashFiles({ files: [{ path: '/proc/self/status' }], racyFromNs: null, verify: false })).toEqual([
      { ok: false, code: 'ECHANGING', reason: 'kept changing while it was hashed (3 attempts)' },
    ]);
  });
});
