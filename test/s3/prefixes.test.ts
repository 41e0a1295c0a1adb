import { describe, expect, it } from 'vitest';
import {
  earlyListingFor,
  folderOf,
  type Listing,
  listingFor,
  listingLookup,
  MANY_ACTORS,
  planListings,
} from '../../src/s3/prefixes.js';
import { rangeListings } from '../../src/s3/ranges.js';

const system = (actor: string, i: number) => ({
  bucket: 'assets',
  key: `system_actors/training_data/${actor}/${actor}_${i}.jpg`,
});
const custom = (user: string, actor: string, i: number) => ({
  bucket: 'assets',
  key: `${user}/custom_actor/${actor}/training_data/${actor}_${i}.png`,
});
const actors = (n: number) => Array.from({ length: n }, (_, i) => `${String(i).padStart(4, '0')}_actor`);

describe('planListings', () => {
  it('lists each actor folder when few actors are selected', () => {
    const keys = actors(3).flatMap((a) => [system(a, 0), system(a, 1)]);
    expect(planListings(keys, false)).toEqual(
      actors(3).map((a) => ({ bucket: 'assets', prefix: `system_actors/training_data/${a}/` })),
    );
  });

  it('lists the one prefix all system actors share when many are selected', () => {
    const keys = actors(289).flatMap((a) => Array.from({ length: 17 }, (_, i) => system(a, i)));
    expect(planListings(keys, true)).toEqual([{ bucket: 'assets', prefix: 'system_actors/training_data/' }]);
  });

  it('cuts the shared prefix back to a "/" (actor names share "00")', () => {
    const keys = ['0001_a', '0002_b'].map((a) => system(a, 0));
    expect(planListings(keys, true)).toEqual([{ bucket: 'assets', prefix: 'system_actors/training_data/' }]);
  });

  it('keeps the two layouts apart instead of listing the whole bucket', () => {
    const user = '7f3c2a9e-1b2d-4c5e-8f90-123456789abc';
    const keys = [...actors(10).map((a) => system(a, 0)), custom(user, 'x', 0), custom(user, 'y', 1)];
    expect(planListings(keys, true)).toEqual([
      { bucket: 'assets', prefix: `${user}/custom_actor/` },
      { bucket: 'assets', prefix: 'system_actors/training_data/' },
    ]);
  });

  it('plans each bucket on its own', () => {
    const keys = [system('0000_a', 0), { bucket: 'other', key: 'system_actors/training_data/0001_b/x.jpg' }];
    expect(planListings(keys, true)).toEqual([
      { bucket: 'assets', prefix: 'system_actors/training_data/0000_a/' },
      { bucket: 'other', prefix: 'system_actors/training_data/0001_b/' },
    ]);
  });

  it('drops a prefix another one covers, and covers every key', () => {
    const keys = [
      { bucket: 'b', key: 'a/x.jpg' },
      { bucket: 'b', key: 'a/deeper/y.jpg' },
      { bucket: 'b', key: 'ab/z.jpg' },
      { bucket: 'b', key: 'top.jpg' },
    ];
    const listings = planListings(keys, false);
    expect(listings).toEqual([
      { bucket: 'b', prefix: 'a/' },
      { bucket: 'b', prefix: 'ab/' },
      { bucket: 'b', prefix: 'top.jpg' },
    ]);
    for (const key of keys) expect(listingFor(listings, key)).toBeDefined();
  });

  it('names its threshold', () => {
    expect(MANY_ACTORS).toBeGreaterThan(1);
    expect(folderOf('a/b/c.jpg')).toBe('a/b/');
    expect(folderOf('c.jpg')).toBe('c.jpg');
  });
});

describe('earlyListingFor', () => {
  it('guesses the folder the actor’s folder sits in: what planListings lists for many actors, in both layouts', () => {
    const names = actors(MANY_ACTORS + 1);
    const keys = names.map((a) => system(a, 0));
    expect(earlyListingFor(keys[0]!, names[0]!)).toEqual(planListings(keys, true)[0]);
    const user = '7f3c2a9e-1b2d-4c5e-8f90-123456789abc';
    const customKeys = names.map((a, i) => custom(user, a, i));
    expect(earlyListingFor(customKeys[3]!, names[3]!)).toEqual({ bucket: 'assets', prefix: `${user}/custom_actor/` });
    expect(earlyListingFor(customKeys[3]!, names[3]!)).toEqual(planListings(customKeys, true)[0]);
  });

  it('guesses nothing when no folder is named after the actor, or that folder is at the top of the bucket', () => {
    expect(earlyListingFor({ bucket: 'b', key: 'a/elsewhere/1.jpg' }, '0000_x')).toBeUndefined();
    expect(earlyListingFor({ bucket: 'b', key: 'a/0000_x_1.jpg' }, '0000_x')).toBeUndefined();
    expect(earlyListingFor({ bucket: 'b', key: '0000_x/1.jpg' }, '0000_x')).toBeUndefined();
    expect(earlyListingFor({ bucket: 'b', key: '/0000_x/1.jpg' }, '0000_x')).toBeUndefined();
  });
});

describe('listingLookup', () => {
  it('finds the listing listingFor finds, for keys inside, between, at the bounds of and outside every listing', () => {
    // Two buckets; in one, ranges of a shared prefix (keys with "+", spaces, non-ASCII and an emoji), two
    // custom users' prefixes and a folder at the top; keys of folders nobody asked for interleaved.
    const names = ['0000_a', '0001_b', '0002 c', '0003+d', '0004_é', '0005_李', '0006_😀', '0007_ｚ', ...actors(40)];
    const keys = names.flatMap((name) => [0, 1, 2].map((i) => system(name, i).key));
    const planned: Listing[] = [
      ...rangeListings({ bucket: 'assets', prefix: 'system_actors/training_data/' }, keys, 50),
      { bucket: 'assets', prefix: 'u1/custom_actor/' },
      { bucket: 'assets', prefix: 'u2/custom_actor/' },
      { bucket: 'assets', prefix: 'top.jpg' },
      { bucket: 'other', prefix: 'system_actors/training_data/' },
    ];
    expect(planned.filter((listing) => listing.from !== undefined).length).toBeGreaterThan(1);
    const lookup = listingLookup([...planned].reverse());
    const asked = [
      ...keys,
      ...planned.flatMap((listing) => [listing.prefix, listing.from ?? '', listing.before ?? '']),
      ...names.map((name) => `system_actors/training_data/${name}_unasked/x.jpg`),
      'system_actors/training_data/',
      'system_actors/training_datb/x.jpg',
      'system_actors/',
      'u1/custom_actor/0000_x/training_data/0000_x_0.png',
      'u1/custom_actor',
      'u3/custom_actor/x.png',
      'top.jpg',
      'top.jpg.bak',
      '',
      '\uffff',
    ];
    let found = 0;
    for (const bucket of ['assets', 'other', 'none'])
      for (const key of asked) {
        const expected = listingFor(planned, { bucket, key });
        expect(lookup({ bucket, key }), `${bucket}/${key}`).toBe(expected);
        if (expected) found += 1;
      }
    expect(found).toBeGreaterThan(keys.length);
  });
});
