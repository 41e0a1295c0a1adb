/**
 * Range listing against a real S3-compatible server: a shared prefix listed as key ranges at once covers every
 * key exactly once (folders next to the boundaries, folders nobody asked for in between, spaces, `+` and
 * non-ASCII names), a failing range fails only its own keys, and a shard's ranges read about a page each.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { keyCandidates, parseS3Url, type S3Location } from '../../src/shared/s3-url.js';
import type { S3Access } from '../../src/s3/client.js';
import { rangeListings, startAfterOf } from '../../src/s3/ranges.js';
import { verifyUrls } from '../../src/s3/verify.js';
import { putObject, startFaultProxy, startS3Server, testS3, type FaultProxy } from '../helpers/s3.js';

const PREFIX = 'system_actors/training_data/';
const ACTORS = 80;
const IMAGES = 15; // 1200 keys asked about: two ranges
/** Actor folder names, a few of them spelled as S3 users do. */
const actorName = (i: number) =>
  i === 10 ? '0010_a b' : i === 20 ? '0020_a+b' : i === 30 ? '0030_é' : `${String(i).padStart(4, '0')}_actor`;
const keyOf = (a: number, i: number) => `${PREFIX}${actorName(a)}/${i}.jpg`;
const urlOf = (key: string) =>
  `https://assets.s3.us-west-1.amazonaws.com/${key.split('/').map(encodeURIComponent).join('/')}`;
const md5 = (text: string) => createHash('md5').update(text).digest('hex');

let proxy: FaultProxy;
const locations: S3Location[] = [];
beforeAll(async () => {
  const { endpoint } = await startS3Server(['assets']);
  proxy = await startFaultProxy(endpoint);
  const seed = testS3(endpoint, { concurrency: 32 });
  const puts: Array<Promise<void>> = [];
  for (let a = 0; a < ACTORS; a += 1) {
    for (let i = 0; i < IMAGES; i += 1) {
      puts.push(putObject(seed, 'assets', keyOf(a, i), keyOf(a, i)));
      locations.push(parseS3Url(urlOf(keyOf(a, i))));
    }
  }
  // Keys nobody asks about, between and around the actors' folders: never taken for theirs.
  for (const key of ['0005_actor-old/1.jpg', '0047_actor.jpg', '0047_actor/sub/x.jpg', '0079_actor0', 'zzz/1.jpg'])
    puts.push(putObject(seed, 'assets', `${PREFIX}${key}`, 'other'));
  for (let i = 0; i < 30; i += 1) puts.push(putObject(seed, 'assets', `unrelated/${i}.bin`, 'x'));
  await Promise.all(puts);
});

/** The start-after of each LIST request the proxy saw since `from`. */
const startsAfter = (from: number) =>
  proxy.requests
    .slice(from)
    .filter((r) => /[?&]list-type=2/.test(r.url))
    .map((r) => new URL(r.url, 'http://proxy').searchParams.get('start-after'));

function client(): S3Access {
  return testS3(proxy.endpoint, { forcePathStyle: true });
}

describe('range listing', () => {
  it('lists the ranges at once and finds every key exactly as it is, and nothing else', async () => {
    const s3 = client();
    const before = proxy.requests.length;
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS });
    expect(facts.size).toBe(ACTORS * IMAGES);
    for (const location of locations)
      expect(facts.get(location.url), location.key).toMatchObject({
        exists: true,
        md5: md5(location.key),
        verifiable: true,
      });
    // The first range starts at the first folder, the second at a folder boundary: one page each.
    const starts = startsAfter(before);
    expect(starts).toHaveLength(2);
    expect(starts[0]).toBe(`${PREFIX}0000_actor`);
    expect(starts[1]).toMatch(new RegExp(`^${PREFIX}00\\d\\d_actor$`));
    expect(s3.stats).toMatchObject({ list: 2, head: 0 });
  });

  it('a range whose listing fails fails only the keys inside it; the others are found', async () => {
    // Every spelling of a key is asked about (`0020_a+b` may be `0020_a b`), as verifyUrls plans.
    const keys = locations.flatMap(keyCandidates);
    const ranges = rangeListings({ bucket: 'assets', prefix: PREFIX }, keys);
    expect(ranges).toHaveLength(2);
    const failing = startAfterOf(ranges[1]!);
    let faulty = true; // the proxy keeps a persistent fault: this turns it off after the test
    proxy.inject(
      'http500',
      Infinity,
      (request) => faulty && new URL(request.url, 'http://proxy').searchParams.get('start-after') === failing,
    );
    try {
      const facts = await verifyUrls(client(), locations, { actorFolders: ACTORS });
      const inSecond = (location: S3Location) => location.key >= ranges[1]!.from!;
      for (const location of locations) {
        const fact = facts.get(location.url)!;
        if (inSecond(location))
          expect(fact, location.key).toMatchObject({
            exists: true,
            md5: null,
            verifiable: false,
            error: expect.stringContaining('InternalError'),
          });
        else expect(fact, location.key).toMatchObject({ exists: true, md5: md5(location.key), verifiable: true });
      }
      expect(locations.filter(inSecond).length).toBeGreaterThan(0);
    } finally {
      faulty = false;
    }
  });

  it('one shard of four: ranges over its own actors only, about a page each, up to its last folder', async () => {
    const own = locations.filter((location) => Number(location.key.slice(PREFIX.length, PREFIX.length + 4)) % 4 === 1);
    const s3 = client();
    const before = proxy.requests.length;
    const facts = await verifyUrls(s3, own, { actorFolders: ACTORS / 4, spread: 4 });
    for (const location of own)
      expect(facts.get(location.url), location.key).toMatchObject({ exists: true, md5: md5(location.key) });
    const ranges = rangeListings({ bucket: 'assets', prefix: PREFIX }, own.flatMap(keyCandidates), 4);
    expect(ranges.length).toBeGreaterThan(1);
    // One request a range: each holds about a page of keys, its own and the other shards' between them.
    expect(s3.stats.list).toBe(ranges.length);
    expect(startsAfter(before).sort()).toEqual(ranges.map((range) => startAfterOf(range)).sort());
  });
});
