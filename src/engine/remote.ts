/**
 * `--remote`: collects the URLs the actors' files name (in the workers), lists what S3 holds there (a few
 * LIST requests for many actors), and hands each actor its own findings. An actor at rest whose cache entry
 * recorded what S3 held gives its URLs from the cache, and is `settled` when the listing agrees.
 */
import { setImmediate } from 'node:timers/promises';
import pLimit from 'p-limit';
import type { AssessTask, RemoteCheck } from '../../workers/assess.js';
import { remotelySettleable, remotelySettled, type CacheEntry } from '../cache/sync-cache.js';
import type { ActorFailure } from '../errors.js';
import type { S3Access, S3Options, S3Stats } from '../s3/client.js';
import type { EarlyListing } from '../s3/list.js';
import { earlyListingFor, MANY_ACTORS, type Listing } from '../s3/prefixes.js';
import type { BesideFolder, RemoteObjectFact, VerifyOptions } from '../s3/verify.js';
import { parseS3Url, type S3Location } from '../shared/s3-url.js';
import type { Actor } from './discover.js';
import type { Confirm } from './plan.js';
import type { WorkerPool } from './pool.js';
import type { ActorReport } from './report.js';
import type { DataRoot } from './root.js';

export interface RemoteFindings {
  byActor: Map<string, Pick<AssessTask, 'remote'>>;
  /** Actors the cache settles: nothing local changed, and S3 holds what their entry recorded. */
  settled: Map<string, ActorReport>;
  /** Counted as they are sent. */
  requests: S3Stats;
  warnings: ActorFailure[];
  /** HEADs of the URLs an assessment asks about (each URL once), on the run's client. */
  confirm: Confirm;
  /** Closes the run's client: call it when every actor is assessed. */
  close: () => void;
}

/**
 * The findings of every actor. With many actors, listings start before the URLs are all known: those the
 * cache's URLs call for, else the one the first URL suggests (the folder its actor's folder sits in).
 */
export async function checkRemote(
  actors: Actor[],
  data: DataRoot,
  pool: WorkerPool,
  s3Options: S3Options,
  others: readonly string[],
  cached: ReadonlyMap<string, CacheEntry> = new Map(),
): Promise<RemoteFindings> {
  // The S3 modules load while the workers collect the URLs.
  const modules = Promise.all([import('../s3/client.js'), import('../s3/verify.js'), import('../s3/list.js')]);
  let ok = false;
  let s3: S3Access | undefined;
  let early: EarlyListing[] = [];
  let collecting: ReturnType<typeof collectUrls> | undefined;
  try {
    const known = new Map<string, S3Location>();
    const spread = (actors.length + others.length) / Math.max(1, actors.length);
    const options: VerifyOptions = { actorFolders: actors.length, spread };
    ({ s3, early } = await startFromCache(actors, cached, known, s3Options, others, options));
    const settleable = await settleableEach(actors, data, cached);
    collecting = collectUrls(actors, data, pool, settleable);
    const [{ createS3 }, { verifyUrls, confirmUrls }, { startListing }] = await modules;
    s3 ??= createS3(s3Options);
    const guess = early.length > 0 ? undefined : await collecting.firstGuess;
    if (guess) early = [startListing(s3, guess)];
    const byUrl = await collecting.urls;
    const client = s3;
    const locations = locationsOf(byUrl.flat(), known);
    options.beside ??= besideFolders(actors, byUrl, others, known);
    const warnings: ActorFailure[] = [];
    const onWarning = (file: string, reason: string) => void warnings.push({ actor: '', file, reason });
    const facts = await verifyUrls(client, [...locations.values()], {
      ...options,
      early,
      onWarning,
      deferHeads: true,
    });
    const confirm = confirmer(locations, (fresh) => confirmUrls(client, fresh, facts));
    ok = true;
    return {
      ...findingsOf(actors, byUrl, facts, settleable, cached),
      requests: client.stats,
      warnings,
      confirm,
      close: () => client.close(),
    };
  } finally {
    // After a failure above: the URL tasks still queued return at once, and nothing is left in flight.
    collecting?.stop();
    await collecting?.urls.catch(() => undefined);
    await Promise.all(early.map((listing) => listing.stop()));
    if (!ok) s3?.close();
  }
}

/**
 * With many actors, the listings the URLs their cache entries recorded call for, started now: the stat checks
 * that say which entries still hold (every night, nearly all) then run while the pages are on the way (scale 1,
 * 16 runs alternating: 0.895 → 0.845 s).
 */
async function startFromCache(
  actors: Actor[],
  cached: ReadonlyMap<string, CacheEntry>,
  known: Map<string, S3Location>,
  s3Options: S3Options,
  others: readonly string[],
  options: VerifyOptions,
): Promise<{ s3?: S3Access; early: EarlyListing[] }> {
  if (actors.length <= MANY_ACTORS) return { early: [] };
  const urls = actors.map((actor) => Object.keys(cached.get(actor.name)?.remote ?? {}));
  const fromCache = [...locationsOf(urls.flat(), known).values()];
  if (fromCache.length === 0) return { early: [] };
  options.beside = besideFolders(actors, urls, others, known);
  const [{ createS3 }, { startVerifying }] = await Promise.all([import('../s3/client.js'), import('../s3/verify.js')]);
  const s3 = createS3(s3Options);
  try {
    return { s3, early: startVerifying(s3, fromCache, options) };
  } catch (error) {
    s3.close();
    throw error;
  }
}

/**
 * Each actor's URLs (from its cache entry when `settleable`, else read by a worker), and the listing the
 * first URL suggests. Only many actors are listed by shared prefix: with a few, there is nothing to guess.
 */
function collectUrls(actors: Actor[], data: DataRoot, pool: WorkerPool, settleable: (string[] | undefined)[]) {
  const limit = pLimit(pool.threads * 4);
  let stopped = false;
  let guessed: ((guess: Listing | undefined) => void) | undefined;
  const firstGuess =
    actors.length > MANY_ACTORS ? new Promise<Listing | undefined>((resolve) => (guessed = resolve)) : undefined;
  const guessFrom = (actor: Actor, found: string[]) => {
    for (const url of found) {
      const location = tryParseS3Url(url);
      const guess = location && earlyListingFor(location, actor.name);
      if (guess) {
        guessed?.(guess);
        guessed = undefined;
        return;
      }
    }
  };
  const urls = Promise.all(
    actors.map((actor, i) =>
      limit(async () => {
        if (stopped) return [];
        const found = settleable[i] ?? (await pool.urls({ actor, data }));
        if (guessed) guessFrom(actor, found);
        return found;
      }),
    ),
  ).finally(() => guessed?.(undefined));
  return { urls, firstGuess, stop: () => void (stopped = true) };
}

/**
 * The other shards' actor folders beside these actors' in S3 (their `urls` parsed into `known` first): `<prefix><name>/`, where most of these sit at
 * `<prefix><own name>/` (the studio's `system_actors/training_data/`), each counted at the keys of an average
 * one of them there. A shard's ranges are then cut where all shards' keys fill a page, as one unsharded run
 * cuts them (scale 10, 4 shards: 53 LIST requests each, not 68–73). None when no prefix holds most of them
 * (custom actors, one folder per user): which of the others sit where is not known, and `spread` stands in.
 */
function besideFolders(
  actors: Actor[],
  urls: (string[] | undefined)[],
  others: readonly string[],
  known: ReadonlyMap<string, S3Location>,
): BesideFolder[] {
  if (others.length === 0) return [];
  const places = new Map<string, { bucket: string; prefix: string; actors: number; keys: number }>();
  actors.forEach((actor, i) => {
    const here = new Set<string>();
    for (const url of urls[i] ?? []) {
      const location = known.get(url); // parsed by locationsOf already; an unusable URL is not there
      const listing = location && earlyListingFor(location, actor.name);
      if (!listing) continue;
      const id = `${listing.bucket}/${listing.prefix}`;
      let place = places.get(id);
      if (!place) places.set(id, (place = { bucket: listing.bucket, prefix: listing.prefix, actors: 0, keys: 0 }));
      if (!here.has(id)) place.actors += 1;
      here.add(id);
      place.keys += 1;
    }
  });
  const main = [...places.values()].find((place) => place.actors > MANY_ACTORS && place.actors * 2 > actors.length);
  if (!main) return [];
  return others.map((name) => ({
    bucket: main.bucket,
    folder: `${main.prefix}${name}/`,
    keys: main.keys / main.actors,
  }));
}

/**
 * Each actor's cache entry URLs when it still holds ({@link remotelySettleable}); it yields now and then, so
 * that listings already started send their requests and read their pages meanwhile.
 */
async function settleableEach(
  actors: Actor[],
  data: DataRoot,
  cached: ReadonlyMap<string, CacheEntry>,
): Promise<(string[] | undefined)[]> {
  const settleable: (string[] | undefined)[] = [];
  for (const [i, actor] of actors.entries()) {
    if (i > 0 && i % YIELD_EVERY === 0) await setImmediate();
    settleable.push(remotelySettleable(actor, data, cached.get(actor.name)));
  }
  return settleable;
}

/** Actors checked between two yields: ~5 ms of stats at 17 images each. */
const YIELD_EVERY = 16;

/** Each distinct usable URL's location (those in `known` not parsed again). An unusable URL fails its actor in the assessment, with the file that holds it. */
function locationsOf(urls: string[], known: Map<string, S3Location>): Map<string, S3Location> {
  const locations = new Map<string, S3Location>();
  for (const url of urls) {
    if (locations.has(url)) continue;
    const location = known.get(url) ?? tryParseS3Url(url);
    if (!location) continue;
    locations.set(url, location);
    known.set(url, location);
  }
  return locations;
}

/** Each actor's own facts, and the actors the cache settles (their findings are kept too: `check --require-synced` assesses them anyway). */
function findingsOf(
  actors: Actor[],
  byUrl: string[][],
  facts: Map<string, RemoteObjectFact>,
  settleable: (string[] | undefined)[],
  cached: ReadonlyMap<string, CacheEntry>,
): Pick<RemoteFindings, 'byActor' | 'settled'> {
  const byActor = new Map<string, Pick<AssessTask, 'remote'>>();
  const settled = new Map<string, ActorReport>();
  actors.forEach((actor, i) => {
    const report = settleable[i] && remotelySettled(actor, cached.get(actor.name)!, facts);
    if (report) settled.set(actor.name, report);
    const remote: Record<string, RemoteCheck> = {};
    for (const url of byUrl[i]!) {
      const fact = facts.get(url);
      if (fact) remote[url] = fact;
    }
    byActor.set(actor.name, { remote });
  });
  return { byActor, settled };
}

/** HEADs each URL asked about once, however many actors ask (`head` sends the new ones together). */
function confirmer(
  locations: Map<string, S3Location>,
  head: (fresh: S3Location[]) => Promise<Map<string, RemoteCheck>>,
): Confirm {
  const confirmed = new Map<string, Promise<RemoteCheck>>();
  return async (asked) => {
    const fresh = asked.filter((url) => !confirmed.has(url) && locations.has(url));
    const heads = head(fresh.map((url) => locations.get(url)!));
    for (const url of fresh)
      confirmed.set(
        url,
        heads.then((found) => found.get(url)!),
      );
    const known = asked.filter((url) => confirmed.has(url));
    return Object.fromEntries(await Promise.all(known.map(async (url) => [url, await confirmed.get(url)!] as const)));
  };
}

function tryParseS3Url(url: string): S3Location | undefined {
  try {
    return parseS3Url(url);
  } catch {
    return undefined;
  }
}
