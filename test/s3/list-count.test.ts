/**
 * SPEC §7: `--remote` verification of all actors takes about objects / 1000 LIST requests and no HEAD in
 * the common case; a few actors take one LIST each.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { parseS3Url, type S3Location } from '../../src/shared/s3-url.js';
import type { S3Access } from '../../src/s3/client.js';
import { startListing, type EarlyListing } from '../../src/s3/list.js';
import { startVerifying, verifyUrls, type RemoteObjectFact } from '../../src/s3/verify.js';
import { startAwsProxy } from '../helpers/aws-proxy.js';
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
      expect(facts.get(location.url)).toMatchObject({
        exists: true,
        md5: createHash('md5').update(location.key).digest('hex'),
        verifiable: true,
      });
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
const withoutTimes = (facts: Map<string, RemoteObjectFact>) =>
  new Map([...facts].map(([url, { checkedAt: _, ...fact }]) => [url, fact]));

/** `s3` with every request's promise kept, in order: a test can wait for a page to arrive without sleeping. */
function watched(s3: S3Access): { s3: S3Access; requests: Array<Promise<unknown>> } {
  const requests: Array<Promise<unknown>> = [];
  return {
    s3: {
      ...s3,
      run: (task) => {
        const request = s3.run(task);
        requests.push(request);
        return request;
      },
    },
    requests,
  };
}

/** Lets every callback due run (a listing that got its page either waits or has sent the next request). */
const settle = async () => {
  for (let i = 0; i < 5; i += 1) await new Promise(setImmediate);
};

describe('an early listing (started before the URLs are known)', () => {
  const PREFIX = { bucket: 'assets', prefix: 'system_actors/training_data/' };

  it('that the plan holds: the same facts and the same LIST requests as listing afterwards', async () => {
    const plain = testS3(endpoint);
    const expected = await verifyUrls(plain, locations, { actorFolders: ACTORS });
    const s3 = testS3(endpoint);
    const early = startListing(s3, PREFIX);
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS, early: [early] });
    expect(withoutTimes(facts)).toEqual(withoutTimes(expected));
    expect(s3.stats).toEqual(plain.stats);
    // What it found (the prefix's first key range) dates from when it started; the other ranges' from later.
    const times = [...facts.values()].map((fact) => fact.checkedAt);
    expect(times).toContain(early.checkedAt);
    expect(times.every((time) => time >= early.checkedAt)).toBe(true);
  });

  it('wider than the plan (all system actors; the plan, one actor’s folder): stopped, and only the plan is listed', async () => {
    const one = locations.filter((location) => location.key.includes(`/${actorName(0)}/`));
    const plain = testS3(endpoint);
    const expected = await verifyUrls(plain, one, { actorFolders: ACTORS });
    expect(plain.stats.list).toBe(1);
    const { s3, requests } = watched(testS3(endpoint));
    const early = startListing(s3, PREFIX);
    await requests[0]; // a page later: the plan's listing starts at a later time than the early one
    const facts = await verifyUrls(s3, one, { actorFolders: ACTORS, early: [early] });
    expect(withoutTimes(facts)).toEqual(withoutTimes(expected));
    expect([...facts.values()].every((fact) => fact.checkedAt > early.checkedAt)).toBe(true);
    // The plan's page and the early one's two at most (all of them: it was stopped after the first or second).
    expect(s3.stats.list).toBeLessThanOrEqual(3);
    expect(requests).toHaveLength(s3.stats.list);
  });

  it('of a bucket that does not exist, not in the plan: its failure is dropped with it', async () => {
    const s3 = testS3(endpoint);
    const facts = await verifyUrls(s3, locations, {
      actorFolders: ACTORS,
      early: [startListing(s3, { bucket: 'no-such-bucket', prefix: 'system_actors/training_data/' })],
    });
    expect(facts.size).toBe(ACTORS * IMAGES);
    expect([...facts.values()].every((fact) => fact.exists && fact.verifiable && fact.error === undefined)).toBe(true);
  });

  it('that fills its bound before the keys are known waits for them, then finishes', async () => {
    const { s3, requests } = watched(testS3(endpoint));
    const early = startListing(s3, PREFIX, 1);
    await requests[0];
    await settle();
    expect(requests).toHaveLength(1); // waiting: without the bound, the second page would be asked for by now
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS, early: [early] });
    expect(facts.size).toBe(ACTORS * IMAGES);
    expect([...facts.values()].every((fact) => fact.exists && fact.verifiable)).toBe(true);
    expect(s3.stats.list).toBe(Math.ceil((ACTORS * IMAGES) / 1000));
  });

  it('that is stopped has no request left in flight once stop resolves', async () => {
    const { s3, requests } = watched(testS3(endpoint));
    const early = startListing(s3, PREFIX);
    await early.stop();
    expect(requests.length).toBeLessThanOrEqual(1);
    await Promise.allSettled(requests);
    await settle();
    expect(requests.length).toBeLessThanOrEqual(1);
  });
});

describe('listings started from the URLs a cache recorded (startVerifying)', () => {
  it('the same URLs: every started listing serves the plan, no request repeated, facts as listing afterwards', async () => {
    const plain = testS3(endpoint);
    const expected = await verifyUrls(plain, locations, { actorFolders: ACTORS });
    const s3 = testS3(endpoint);
    const early = startVerifying(s3, locations, { actorFolders: ACTORS });
    expect(early.length).toBeGreaterThan(1); // ranges, listed at once
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS, early });
    expect(withoutTimes(facts)).toEqual(withoutTimes(expected));
    expect(s3.stats).toEqual(plain.stats);
    const started = new Set(early.map((listing) => listing.checkedAt));
    expect([...facts.values()].every((fact) => started.has(fact.checkedAt))).toBe(true);
  });

  it('an actor folder added inside their span (new since the cache): the started ranges still serve it', async () => {
    const isNew = (location: S3Location) => location.key.includes(`/${actorName(30)}/`);
    const s3 = testS3(endpoint);
    const early = startVerifying(
      s3,
      locations.filter((location) => !isNew(location)),
      { actorFolders: ACTORS },
    );
    // Its 17 keys move the cut a plan of all URLs would make: the started one is kept, not planned again.
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS, early });
    for (const location of locations.filter(isNew))
      expect(facts.get(location.url)).toMatchObject({
        exists: true,
        verifiable: true,
        md5: createHash('md5').update(location.key).digest('hex'),
      });
    expect(s3.stats.list).toBe(early.length);
  });

  it('a URL outside their span: listed by a plan of its own; the facts are those of listing afterwards', async () => {
    const late = actorName(69);
    const cachedOnes = locations.filter((location) => !location.key.includes(`/${late}/`));
    const plain = testS3(endpoint);
    const expected = await verifyUrls(plain, locations, { actorFolders: ACTORS });
    const { s3, requests } = watched(testS3(endpoint));
    const early = startVerifying(s3, cachedOnes, { actorFolders: ACTORS });
    const facts = await verifyUrls(s3, locations, { actorFolders: ACTORS, early });
    expect(withoutTimes(facts)).toEqual(withoutTimes(expected));
    expect(facts.get(locations.find((l) => l.key.includes(`/${late}/`))!.url)).toMatchObject({ exists: true });
    const bounded = (started: EarlyListing) =>
      started.listing.from !== undefined && started.listing.before !== undefined;
    expect(early.every(bounded)).toBe(true); // ranges that end before the late actor's folder
    await Promise.allSettled(requests);
    await settle();
    expect(requests).toHaveLength(s3.stats.list); // the ranges not taken were stopped: none left in flight
  });
});

describe('listings started before the plan do not make it read page after page', () => {
  /**
   * Holds every request at a proxy and waits until `count` LIST requests have arrived, none answered: the
   * ranges were sent at once, not one after another's answer. Then lets them through. (The wait is long for a
   * loaded machine; a listing that waits for an answer never sends more, however long.)
   */
  async function sentAtOnce(count: number, start: (s3: S3Access) => Promise<Map<string, RemoteObjectFact>>) {
    const proxy = await startAwsProxy(endpoint);
    const release = proxy.hold();
    try {
      const checking = start(testS3(proxy.endpoint, { concurrency: 16 }));
      await vi.waitFor(() => expect(proxy.count('list')).toBeGreaterThanOrEqual(count), { timeout: 30_000 });
      release();
      return await checking;
    } finally {
      release();
    }
  }

  it('no cache (the first URL’s unbounded guess): it serves the first range, the others go at once', async () => {
    const expected = await verifyUrls(testS3(endpoint), locations, { actorFolders: ACTORS });
    const facts = await sentAtOnce(2, (s3) =>
      verifyUrls(s3, locations, {
        actorFolders: ACTORS,
        early: [startListing(s3, { bucket: 'assets', prefix: 'system_actors/training_data/' })],
      }),
    );
    expect(withoutTimes(facts)).toEqual(withoutTimes(expected));
  });

  it('a cache of two actors (one range over the span), now seventy: planned again, its ranges at once', async () => {
    const expected = await verifyUrls(testS3(endpoint), locations, { actorFolders: ACTORS });
    const ends = (location: S3Location) =>
      location.key.includes(`/${actorName(0)}/`) || location.key.includes(`/${actorName(ACTORS - 1)}/`);
    const facts = await sentAtOnce(3, (s3) => {
      const early = startVerifying(s3, locations.filter(ends), { actorFolders: ACTORS });
      expect(early).toHaveLength(1);
      return verifyUrls(s3, locations, { actorFolders: ACTORS, early });
    });
    expect(withoutTimes(facts)).toEqual(withoutTimes(expected));
  });
});
