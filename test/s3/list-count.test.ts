/**
 * SPEC §7: `--remote` verification of all actors takes about objects / 1000 LIST requests and no HEAD in
 * the common case; a few actors take one LIST each.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseS3Url, type S3Location } from '../../src/s3-url.js';
import type { S3Access } from '../../src/s3/client.js';
import { startListing, verifyUrls, type RemoteObjectFact } from '../../src/s3/verify.js';
import { putObject, startS3Server, testS3 } from '../helpers/s3.js';

const ACTORS = 70;
const IMAGES = 17; // 1190 objects: two pages
const actorName = (i: number) => `${String(i).padStart(4, '0')}_european_16_male`;

let endpoint: string;
let seed: S3Access;
const locations: S3Location[] = [];
beforeAll(async () => {
  ({ endpoint } = await startS3Server(['assets']));
  seed = testS3(endpoint, { concurrency: 32 });
  const puts: Array<Promise<void>> = [];
  for (let a = 0; a < ACTORS; a += 1) {
    for (let i = 0; i < IMAGES; i += 1) {
      const key = `system_actors/training_data/${actorName(a)}/${actorName(a)}_${i}.jpg`;
      puts.push(putObject(seed, 'assets', key, key));
      locations.push(parseS3Url(`https://assets.s3.us-west-1.amazonaws.com/${key}`));
    }
  }
  // Objects outside the actors' prefix must not be listed.
  for (let i = 0; i < 50; i += 1) puts.push(putObject(seed, 'assets', `unrelated/${i}.bin`, 'x'));
  await Promise.all(puts);
});

describe('LIST requests of a verification', () => {
  it('all actors under one prefix: ceil(objects / 1000) pages (+1 at most), no HEAD', async () => {
    const s3 = testS3(endpoint);
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS });

    const objects = ACTORS * IMAGES;
    expect(s3.stats.list).toBeGreaterThanOrEqual(Math.ceil(objects / 1000));
    expect(s3.stats.list).toBeLessThanOrEqual(Math.ceil(objects / 1000) + 1);
    expect(s3.stats.head).toBe(0);
    expect(facts.size).toBe(objects);
    for (const location of locations) {
      expect(facts.get(location.url)).toMatchObject({ exists: true, md5: createHash('md5').update(location.key).digest('hex'), verifiable: true });
    }
  });

  it('a few actors: one LIST for each actor’s folder', async () => {
    const s3 = testS3(endpoint);
    const few = locations.filter((location) => /\/000[0-2]_/.test(location.key));
    const facts = await verifyUrls(s3, few, { actorFolders: 3 });
    expect(s3.stats.list).toBe(3);
    expect(s3.stats.head).toBe(0);
    expect([...facts.values()].every((fact) => fact.exists && fact.verifiable)).toBe(true);
  });
});

/** Facts without the time each was asked: two verifications of the same objects give the same. */
const withoutTimes = (facts: Map<string, RemoteObjectFact>) => new Map([...facts].map(([url, { checkedAt: _, ...fact }]) => [url, fact]));

describe('an early listing (started before the URLs are known)', () => {
  const PREFIX = { bucket: 'assets', prefix: 'system_actors/training_data/' };

  it('that covers the plan: the same facts and no more LIST requests than listing afterwards', async () => {
    const plain = testS3(endpoint);
    const expected = await verifyUrls(plain, locations, { actorFolders: ACTORS });
    const s3 = testS3(endpoint);
    const early = startListing(s3, PREFIX);
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS, early });
    expect(withoutTimes(facts)).toEqual(withoutTimes(expected));
    expect(s3.stats).toEqual(plain.stats);
    // What it found dates from when it started.
    expect(new Set([...facts.values()].map((fact) => fact.checkedAt))).toEqual(new Set([early.checkedAt]));
  });

  it('that covers nothing planned: stopped, and the plan is listed as usual', async () => {
    const plain = testS3(endpoint);
    const expected = await verifyUrls(plain, locations, { actorFolders: ACTORS });
    const s3 = testS3(endpoint);
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS, early: startListing(s3, { bucket: 'assets', prefix: 'unrelated/' }) });
    expect(withoutTimes(facts)).toEqual(withoutTimes(expected));
    // Its one page at most, besides the plan's.
    expect(s3.stats.list).toBeLessThanOrEqual(plain.stats.list + 1);
  });

  it('of a bucket that does not exist, covering nothing: its failure is dropped with it', async () => {
    const s3 = testS3(endpoint);
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS, early: startListing(s3, { bucket: 'no-such-bucket', prefix: 'system_actors/' }) });
    expect(facts.size).toBe(ACTORS * IMAGES);
    expect([...facts.values()].every((fact) => fact.exists && fact.verifiable && fact.error === undefined)).toBe(true);
  });

  it('that fills its bound before the keys are known waits, then finishes with them', async () => {
    const s3 = testS3(endpoint);
    const early = startListing(s3, PREFIX, 1);
    // Let the first page arrive, so that the listing is waiting when the keys come.
    while (s3.stats.list === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const half = locations.slice(0, locations.length / 2);
    const facts = await verifyUrls(s3, half, { actorFolders: ACTORS, early });
    expect(facts.size).toBe(half.length);
    expect([...facts.values()].every((fact) => fact.exists && fact.verifiable)).toBe(true);
    expect(s3.stats.list).toBe(Math.ceil((ACTORS * IMAGES) / 1000));
  });

  it('that is stopped hands out nothing and sends no more requests', async () => {
    const s3 = testS3(endpoint);
    const early = startListing(s3, PREFIX);
    await early.stop();
    const sent = s3.stats.list;
    expect(sent).toBeLessThanOrEqual(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(s3.stats.list).toBe(sent);
  });
});
