import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  candidatePartSizes,
  etagMatches,
  md5OfEtag,
  multipartEtag,
  multipartEtagOfFile,
  normalizeEtag,
  partCountOf,
} from '../../src/s3/etag.js';
import { md5 } from '../helpers/values.js';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'actor-sync-etag-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The S3 definition, written out independently: md5 of the concatenated binary part digests, then `-N`. */
function expectedEtag(bytes: Buffer, partSize: number): string {
  const digests: Buffer[] = [];
  for (let i = 0; i * partSize < bytes.length; i += 1) {
    digests.push(
      createHash('md5')
        .update(bytes.subarray(i * partSize, (i + 1) * partSize))
        .digest(),
    );
  }
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}`;
}

describe('multipartEtag', () => {
  // Values S3 returned for these uploads, as published in moto's test suite (which mimics S3).
  it('matches known S3 ETags: 256 × "0" then "1" in 256-byte parts', () => {
    const bytes = Buffer.concat([Buffer.alloc(256, '0'), Buffer.from('1')]);
    expect(multipartEtag(bytes, 256)).toBe('66d1a1a2ed08fd05c137f316af4ff255-2');
  });

  it('matches known S3 ETags: 5 MiB of "0" then "1" in 5 MiB parts', () => {
    const bytes = Buffer.concat([Buffer.alloc(5 * MiB, '0'), Buffer.from('1')]);
    expect(multipartEtag(bytes, 5 * MiB)).toBe('140f92a6df9f9e415f74a1463bcee9bb-2');
  });

  it('follows the S3 definition for a short last part, an exact multiple and a single part', () => {
    const bytes = randomBytes(20 * MiB + 123);
    expect(multipartEtag(bytes, 8 * MiB)).toBe(expectedEtag(bytes, 8 * MiB));
    expect(multipartEtag(bytes, 8 * MiB)).toMatch(/-3$/);
    const exact = bytes.subarray(0, 16 * MiB);
    expect(multipartEtag(exact, 8 * MiB)).toBe(expectedEtag(exact, 8 * MiB));
    expect(multipartEtag(exact, 8 * MiB)).toMatch(/-2$/);
    const small = bytes.subarray(0, 1000);
    // One part: the md5 of the part's md5, not the md5 of the bytes.
    expect(multipartEtag(small, 8 * MiB)).toBe(
      `${createHash('md5').update(createHash('md5').update(small).digest()).digest('hex')}-1`,
    );
    expect(multipartEtag(small, 8 * MiB)).not.toBe(`${md5(small)}-1`);
  });

  it('gives an empty object one empty part', () => {
    const emptyDigest = createHash('md5').update(Buffer.alloc(0)).digest();
    expect(multipartEtag(Buffer.alloc(0), 8 * MiB)).toBe(`${createHash('md5').update(emptyDigest).digest('hex')}-1`);
  });

  it('is the same computed from a file, read in chunks that do not line up with the parts', async () => {
    const bytes = randomBytes(3 * MiB + 7);
    const path = join(dir, 'stream.bin');
    await writeFile(path, bytes);
    for (const partSize of [MiB, 1_000_003, 5 * MiB]) {
      expect(await multipartEtagOfFile(path, partSize)).toBe(multipartEtag(bytes, partSize));
    }
  });

  it('rejects a part size that is not a positive whole number', () => {
    expect(() => multipartEtag(Buffer.from('x'), 0)).toThrow(/partSize must be a positive whole number/);
  });
});

describe('ETag forms', () => {
  it('strips quotes and W/, and lowercases', () => {
    expect(normalizeEtag('"ABCDEF0123456789ABCDEF0123456789"')).toBe('abcdef0123456789abcdef0123456789');
    expect(normalizeEtag('W/"abc-2"')).toBe('abc-2');
  });

  it('reads a single-part ETag as an MD5 and a multipart one as N parts', () => {
    const hex = 'd41d8cd98f00b204e9800998ecf8427e';
    expect(md5OfEtag(hex)).toBe(hex);
    expect(md5OfEtag(`${hex}-3`)).toBeNull();
    expect(partCountOf(`"${hex}-3"`)).toBe(3);
    expect(partCountOf(hex)).toBeNull();
  });

  it('only proposes part sizes that give the ETag’s part count', () => {
    const size = 20 * MiB;
    for (const partSize of candidatePartSizes(size, 3)) expect(Math.ceil(size / partSize)).toBe(3);
    expect(candidatePartSizes(size, 3)).toContain(8 * MiB);
    expect(candidatePartSizes(size, 4)).toContain(5 * MiB);
    expect(candidatePartSizes(0, 1)).toContain(8 * MiB);
  });
});

describe('etagMatches', () => {
  const bytes = randomBytes(20 * MiB + 5);
  const localMd5 = md5(bytes);

  it('compares a single-part ETag with the MD5', async () => {
    expect(await etagMatches(`"${localMd5}"`, localMd5)).toBe(true);
    expect(await etagMatches(`"${md5(Buffer.from('other'))}"`, localMd5)).toBe(false);
  });

  it('confirms a multipart ETag from the local bytes or file at a common part size', async () => {
    const path = join(dir, 'big.bin');
    await writeFile(path, bytes);
    expect(await etagMatches(expectedEtag(bytes, 8 * MiB), localMd5, bytes)).toBe(true);
    expect(await etagMatches(expectedEtag(bytes, 5 * MiB), localMd5, path)).toBe(true);
    expect(await etagMatches(expectedEtag(bytes, 16 * MiB), localMd5, path)).toBe(true);
  });

  it('confirms a multipart ETag at the part size the part count implies', async () => {
    const partSize = Math.ceil(bytes.length / 7);
    expect(await etagMatches(expectedEtag(bytes, partSize), localMd5, bytes)).toBe(true);
  });

  it('never calls a multipart ETag a mismatch: it cannot tell (null)', async () => {
    const other = randomBytes(bytes.length);
    expect(await etagMatches(expectedEtag(other, 8 * MiB), localMd5, bytes)).toBeNull();
    expect(await etagMatches(expectedEtag(bytes, 8 * MiB), localMd5)).toBeNull();
    expect(await etagMatches('not-an-etag', localMd5, bytes)).toBeNull();
  });
});
