/** Range listing's cuts: every key in exactly one range, in S3's byte order, folders kept whole. */
import { describe, expect, it } from 'vitest';
import {
  compareBytes,
  inRange,
  isPast,
  rangeListings,
  splitIntoRanges,
  startAfterOf,
  type KeyRange,
} from '../../src/s3/ranges.js';

const P = 'system_actors/training_data/';
/** `folders` folders of `each` keys under P, named so that their order is plain. */
function keysOf(folders: number, each: number): string[] {
  return Array.from({ length: folders }, (_, f) =>
    Array.from({ length: each }, (_, i) => `${P}${String(f).padStart(4, '0')}_actor/${i}.png`),
  ).flat();
}

/** The one range each key falls in, or a failure naming a key in none or in two. */
function owners(keys: readonly string[], ranges: readonly KeyRange[]): number[] {
  return keys.map((key) => {
    const hits = ranges.flatMap((range, i) => (inRange(key, range) ? [i] : []));
    if (hits.length !== 1) throw new Error(`${key} is in ${hits.length} ranges`);
    return hits[0]!;
  });
}

describe('splitIntoRanges', () => {
  it('covers every key exactly once, ranges in order, no folder split, at most 950 keys a range', () => {
    const keys = keysOf(289, 17);
    const ranges = splitIntoRanges(keys);
    expect(ranges).toHaveLength(Math.ceil(289 / Math.floor(950 / 17)));
    expect(ranges[0]!.from).toBe(`${P}0000_actor/`);
    expect(ranges.at(-1)!.before).toBe(`${P}0288_actor0`); // the least string after every key of the last folder
    for (let i = 1; i < ranges.length; i += 1) expect(ranges[i]!.from).toBe(ranges[i - 1]!.before);
    const owner = owners(keys, ranges);
    for (let f = 0; f < 289; f += 1) expect(new Set(owner.slice(f * 17, f * 17 + 17)).size).toBe(1);
    for (let r = 0; r < ranges.length; r += 1) expect(owner.filter((o) => o === r).length).toBeLessThanOrEqual(950);
  });

  it('a folder inside another is counted in it: its keys after the nested folder are in a range too', () => {
    const keys = [
      `${P}0000_a/1.jpg`,
      `${P}0000_a/sub/2.jpg`,
      `${P}0000_a/z.jpg`,
      `${P}0001_b/sub/3.jpg`,
      `${P}0001_b/4.jpg`,
    ];
    for (const perRange of [1, 2, 950]) {
      const ranges = splitIntoRanges(keys, 1, perRange);
      owners(keys, ranges); // each key in exactly one range
      expect(ranges.at(-1)!.before).toBe(`${P}0001_b0`);
    }
    // A key without a folder holds no other: `ab/1.jpg` is not inside `a`.
    for (const keys of [
      ['a', 'ab/1.jpg'],
      ['a', 'ab/1.jpg', 'b'],
    ])
      for (const perRange of [1, 950]) owners(keys, splitIntoRanges(keys, 1, perRange));
  });

  it('cuts smaller ranges when the listing holds more than what is wanted (one shard of four)', () => {
    const keys = keysOf(289, 17);
    expect(splitIntoRanges(keys, 4).length).toBe(Math.ceil(289 / Math.floor(950 / 4 / 17)));
  });

  it('none for no keys; one range for keys that fit one, from the first folder to just after the last', () => {
    expect(splitIntoRanges([])).toEqual([]);
    expect(splitIntoRanges(keysOf(3, 17))).toEqual([{ from: `${P}0000_actor/`, before: `${P}0002_actor0` }]);
    expect(splitIntoRanges(['a', 'b'])).toEqual([{ from: 'a', before: 'b\u0000' }]);
  });

  it('a folder larger than a range stays whole, in a range of its own', () => {
    const keys = [...keysOf(1, 2000), `${P}9999_other/a.png`];
    const ranges = splitIntoRanges(keys);
    expect(ranges).toEqual([
      { from: `${P}0000_actor/`, before: `${P}9999_other/` },
      { from: `${P}9999_other/`, before: `${P}9999_other0` },
    ]);
  });

  it('compares as the UTF-8 bytes compare, for characters of every width and prefixes of one another', () => {
    const chars = [
      'a',
      '/',
      '0',
      '~',
      '\u007f',
      'é',
      '\u07ff',
      '\u0800',
      '李',
      '\ud7ff',
      '\ue000',
      '\uff5e',
      '\uffff',
      '\u{10000}',
      '\u{1f600}',
      '\u{10ffff}',
    ];
    const strings = [''];
    for (const a of chars) for (const b of ['', ...chars.slice(0, 6), '\u{1f600}']) strings.push(a + b);
    for (const a of strings) {
      for (const b of strings)
        expect(Math.sign(compareBytes(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(
          Buffer.compare(Buffer.from(a), Buffer.from(b)),
        );
    }
  });

  it('orders as S3 does (UTF-8 bytes): U+FF5E sorts after an emoji, though not in UTF-16', () => {
    const keys = [
      `${P}a\u{ff5e}/1.png`,
      `${P}a\u{1f600}/1.png`,
      `${P}a+b/1.png`,
      `${P}a b/1.png`,
      `${P}a%20b/1.png`,
      `${P}é/1.png`,
    ];
    expect(`${P}a\u{ff5e}` > `${P}a\u{1f600}`).toBe(true); // UTF-16 order
    expect(compareBytes(`${P}a\u{ff5e}`, `${P}a\u{1f600}`)).toBeLessThan(0); // byte order
    const ranges = splitIntoRanges(keys, 1, 1);
    expect(ranges.map((r) => r.from)).toEqual([
      `${P}a b/`,
      `${P}a%20b/`,
      `${P}a+b/`,
      `${P}a\u{ff5e}/`,
      `${P}a\u{1f600}/`,
      `${P}é/`,
    ]);
    expect(new Set(owners(keys, ranges)).size).toBe(keys.length);
  });

  it('a key of a folder nobody asked for, between two ranges, falls in exactly one (interleaved folders)', () => {
    const ranges = splitIntoRanges(keysOf(100, 17));
    // Between the first folder and the last: in exactly one range. Outside: in none.
    owners(
      [`${P}0055_actor-old/1.png`, `${P}0055_actor.png`, `${P}0055_actor/sub/x.png`, `${P}0099_actor/zzz`],
      ranges,
    );
    for (const outside of [`${P}zzz/1.png`, `${P}0099_actor0`, `${P}0000_actor`, 'other/1.png', ''])
      expect(ranges.filter((range) => inRange(outside, range))).toEqual([]);
  });
});

describe('rangeListings', () => {
  const listing = { bucket: 'b', prefix: P };
  it('a shared prefix as ranges when they take fewer requests than its folders, else its folders; one folder as it is', () => {
    expect(rangeListings(listing, keysOf(289, 17))).toHaveLength(6);
    expect(rangeListings(listing, keysOf(289, 17))[0]).toMatchObject({
      bucket: 'b',
      prefix: P,
      from: `${P}0000_actor/`,
    });
    // One shard of four: ranges that hold a quarter of the keys each page reads.
    expect(rangeListings(listing, keysOf(289, 17), 4)).toHaveLength(Math.ceil(289 / Math.floor(950 / 4 / 17)));
    // Folders of 2000 keys: a range each, so the folders themselves (nested ones inside their parent).
    const big = [...keysOf(2, 2000), `${P}0000_actor/sub/1.png`];
    expect(rangeListings(listing, big)).toEqual([
      { bucket: 'b', prefix: `${P}0000_actor/` },
      { bucket: 'b', prefix: `${P}0001_actor/` },
    ]);
    expect(rangeListings(listing, keysOf(1, 17))).toEqual([listing]);
  });

  it('with the folders beside its own (other shards’ actors): cut where all keys fill a range, none without its own', () => {
    // 300 folders of 17 keys: this shard owns the first 40 of them and every 10th after.
    const all = keysOf(300, 17);
    const folder = (key: string) => key.slice(0, key.lastIndexOf('/') + 1);
    const ownFolder = (f: number) => f < 40 || f % 10 === 0;
    const own = all.filter((_, i) => ownFolder(Math.floor(i / 17)));
    const beside = [...new Set(all.filter((key) => !own.includes(key)).map(folder))].map((f) => [f, 17] as const);
    const ranges = rangeListings(listing, own, 1, beside);
    // Every own key in exactly one range; every range as one unsharded run cuts it (55 folders, 935 keys).
    expect(new Set(owners(own, ranges)).size).toBe(ranges.length);
    const whole = rangeListings(listing, all);
    expect(ranges).toEqual(whole);
    // 200 folders beside after the last own one (11 ranges of them): not listed; the last range still ends
    // where all keys fill it.
    const far = Array.from({ length: 200 }, (_, f) => [`${P}9${String(f).padStart(3, '0')}_late/`, 17] as const);
    const withFar = rangeListings(listing, own, 1, [...beside, ...far]);
    expect(withFar.slice(0, -1)).toEqual(whole.slice(0, -1));
    expect(withFar.at(-1)).toMatchObject({ from: whole.at(-1)!.from, before: `${P}9030_late/` });
  });

  it('whatever is beside (wrong names, wrong counts, nested, any character), every own key is in exactly one listing', () => {
    // mulberry32 from a fixed seed: the same 300 cases every run.
    let seed = 17;
    const random = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n;
    };
    const parts = ['a', 'b b', 'c+d', 'é', 'e\u0301', '～', '😀', '\ue000', '0', '/x'];
    const name = () =>
      Array.from({ length: 1 + Math.floor(random(3)) }, () => parts[Math.floor(random(parts.length))]).join('');
    let ranged = 0;
    for (let trial = 0; trial < 300; trial += 1) {
      const own = Array.from({ length: 20 + Math.floor(random(400)) }, () => {
        const depth = Math.floor(random(4)); // 3: nested in an actor's folder
        return `${P}${name()}/${depth === 3 ? `${name()}/` : ''}${name()}.png`;
      });
      // Now and then a key right in P: then P is the one folder, listed whole.
      if (random(20) < 1) own.push(`${P}${name()}.png`);
      const beside = Array.from(
        { length: Math.floor(random(300)) },
        () =>
          [
            `${P}${name()}/${random(4) < 1 ? `${name()}/` : ''}`,
            random(3) < 1 ? Math.floor(random(3000)) : random(14),
          ] as const,
      );
      const ranges = rangeListings(listing, own, 1 + Math.floor(random(8)), beside);
      if (ranges.some((range) => range.before !== undefined)) ranged += 1;
      for (const key of own) {
        const listings = ranges.filter((range) => key.startsWith(range.prefix) && inRange(key, range));
        expect(listings, `trial ${trial}: ${key}`).toHaveLength(1);
      }
    }
    expect(ranged).toBeGreaterThan(150); // most cases were cut into ranges, not listed whole or by folder
  });
});

describe('a range as a listing reads it', () => {
  it('StartAfter is just before the range: the first key of the range comes after it, the last key before does not', () => {
    const range: KeyRange = { from: `${P}0056_actor/`, before: `${P}0112_actor/` };
    const startAfter = startAfterOf(range)!;
    expect(compareBytes(`${P}0056_actor/0.png`, startAfter)).toBeGreaterThan(0);
    expect(compareBytes(`${P}0056_actor/`, startAfter)).toBeGreaterThan(0);
    expect(startAfterOf({ before: 'x' })).toBeUndefined();
    expect(isPast(`${P}0111_actor/9.png`, range)).toBe(false);
    expect(isPast(`${P}0112_actor/0.png`, range)).toBe(true);
    expect(isPast('zzz', { from: 'a' })).toBe(false);
  });
});
