/**
 * From a URL segment to an actor folder: decoding and validating the segment (400), finding the actor by
 * `0`, `0000` or its full name among the folders `listActors` finds (404), and refusing a name that more
 * than one folder answers to (409). Nothing here builds a path from the request: an actor is always one
 * that discovery listed.
 */
import { lstatSync } from 'node:fs';
import {
  actorsSharingIds,
  actorsSharingPaths,
  listActors,
  selects,
  type Actor,
  type SharedPath,
} from '../engine/discover.js';
import type { DataRoot } from '../engine/root.js';
import { isSafeFilename } from '../shared/s3-url.js';
import { coalesce } from './coalesce.js';
import { badRequest, conflict, notFound } from './http-errors.js';
import type { ChangeWatch, Mark } from './watch.js';

const MAX_SEGMENT = 255;

/**
 * Decodes one percent-encoded path segment and checks that it can name a file in a folder: not empty,
 * not `.`/`..`, no `/`, `\`, NUL or other control characters (so `%2F`, `%2e%2e`, `%00` are all 400).
 * @param what how the message names the segment (`the actor id`).
 */
export function decodeSegment(raw: string, what: string): string {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    throw badRequest(`${what} is not valid percent-encoding`);
  }
  if (!isSafeFilename(value) || /[\0-\x1f\x7f]/.test(value) || value.length > MAX_SEGMENT) {
    throw badRequest(
      `${what} is malformed: it must be a single name, without "/", "\\", control characters, "." or ".."`,
    );
  }
  return value;
}

/**
 * Every actor folder, the ids more than one folder maps to (those share one manifest), and the actors whose
 * training_data or manifest is another's too (symlinks followed), by name.
 */
export interface ActorScan {
  actors: Actor[];
  shared: Map<string, string[]>;
  sharedPaths: Map<string, SharedPath>;
}

/** Scans of the actor folders: `fresh` for the actor list, `recent` for the routes that name one actor. */
export interface ActorScanner {
  /**
   * A scan started after this call; calls that come together share one (see coalesce.ts), so the 17
   * thumbnails of a page and its API request do not each list every folder.
   */
  fresh(): Promise<ActorScan>;
  /**
   * For the actor list: the last scan while the watches on the actors and manifests folders (and each
   * actor's folder) saw nothing that changes it, within `TRUST_MS` of it (watch.ts); else `fresh()`.
   */
  watched(): Promise<ActorScan>;
  /** The last scan while the actors and manifests folders still hold the entries it listed; else `fresh()`. */
  recent(): Promise<ActorScan>;
  /** False when the actor's `training_data` is no longer the entry `scan` saw (made a symlink, replaced). */
  stillHolds(scan: ActorScan, actor: Actor): boolean;
}

/**
 * Scans the data root's actor folders. A scan is kept while two lstats say the folders' entries are the
 * same (their mtime, ctime and inode), so naming one actor does not list 289 folders; a folder changed
 * within the last second is not trusted (git's racily-clean rule: a change in the same clock tick as the
 * listing leaves the mtime as it was). What the token misses, another actor's `training_data` made a
 * symlink to this one's, the next actor list (always `fresh`) finds.
 */
export function actorScanner(data: DataRoot, watch?: ChangeWatch): ActorScanner {
  let last: { scan: ActorScan; folders: string } | undefined;
  // `at` is `performance.now()`: a wall clock stepped back would keep a scan past `TRUST_MS`.
  let lastWatched: { scan: ActorScan; mark: Mark; at: number } | undefined;
  // Each scan's training_data tokens, taken before the shared-path check read them: a change in between differs.
  const trainingDirs = new WeakMap<ActorScan, Map<string, string | undefined>>();
  const fresh = coalesce(
    () => 'actors',
    async (): Promise<ActorScan> => {
      // Before the listing: an event during it changes the next mark.
      const mark = watch?.structure();
      const at = performance.now();
      const folders = foldersToken(data);
      const { actors } = await listActors(data);
      const tokens = new Map(actors.map((actor) => [actor.name, entryToken(actor.trainingDir)]));
      const scan = { actors, shared: actorsSharingIds(actors), sharedPaths: actorsSharingPaths(actors, data) };
      trainingDirs.set(scan, tokens);
      last = folders === undefined ? undefined : { scan, folders };
      const trusted = mark !== undefined && watchEvery(watch!, actors, tokens);
      lastWatched = trusted ? { scan, mark, at } : undefined;
      return scan;
    },
  );
  return {
    fresh: () => fresh(undefined),
    watched: async () => {
      const mark = watch?.structure();
      const reusable =
        lastWatched !== undefined && mark === lastWatched.mark && performance.now() - lastWatched.at < watch!.trustMs;
      return reusable ? lastWatched!.scan : fresh(undefined);
    },
    recent: async () => (last !== undefined && foldersToken(data) === last.folders ? last.scan : fresh(undefined)),
    stillHolds: (scan, actor) => entryToken(actor.trainingDir) === trainingDirs.get(scan)?.get(actor.name),
  };
}

/**
 * Sets the watches of every actor `actors` lists, shared or not, with a kept answer or not (only its folder's
 * watch sees its training_data replaced), and drops the others'. False when a training_data changed between
 * the listing and its watch: nothing would report that change.
 */
function watchEvery(watch: ChangeWatch, actors: Actor[], tokens: Map<string, string | undefined>): boolean {
  watch.keepOnly(new Set(actors.map((actor) => actor.name)));
  for (const actor of actors) watch.mark(actor);
  return actors.every((actor) => entryToken(actor.trainingDir) === tokens.get(actor.name));
}

/**
 * The actors and manifests folders' entries as a token; undefined when either changed within the last second.
 * The folders themselves, not a symlink to them: a link's own times never change.
 */
function foldersToken(data: DataRoot): string | undefined {
  const recently = BigInt(Date.now() - 1000) * 1_000_000n;
  const tokens: string[] = [];
  for (const folder of [data.actorsReal, data.manifestsReal]) {
    const stats = lstatSync(folder, { bigint: true, throwIfNoEntry: false });
    if (stats && stats.mtimeNs > recently) return undefined;
    tokens.push(stats ? `${stats.ino}:${stats.mtimeNs}:${stats.ctimeNs}` : 'none');
  }
  return tokens.join('|');
}

/** Which entry a path is (a folder or a symlink, by inode): replacing it changes the token. */
function entryToken(path: string): string | undefined {
  try {
    const stats = lstatSync(path, { throwIfNoEntry: false });
    return stats && `${stats.ino}:${stats.isSymbolicLink()}`;
  } catch {
    return 'unreadable';
  }
}

/**
 * Why an actor cannot be answered for, when its id, folder or manifest is shared: a shared id in the words
 * `sync` uses, a shared folder or manifest without its paths.
 */
export function sharedProblem(
  actor: Actor,
  { shared, sharedPaths }: Pick<ActorScan, 'shared' | 'sharedPaths'>,
): string | null {
  const names = shared.get(actor.id);
  if (names)
    return `${names.length} actor folders share the id ${actor.id} (${names.join(', ')}), so they would share one manifest; rename one`;
  // Named without paths: an answer never shows where on disk the data is.
  const path = sharedPaths.get(actor.name);
  return path
    ? `its ${path.what} is also the ${path.what} of ${path.others.join(', ')} (a symlink); an actor's ${path.what} must be its own`
    : null;
}

/**
 * The one actor `selector` (already decoded) names, from a recent scan (one made afresh when its own
 * training_data is no longer the entry that scan saw).
 * @throws {HttpError} 404 when none does, 409 when it is ambiguous or its id, training_data or manifest is shared.
 */
export async function findActor(scanner: ActorScanner, selector: string): Promise<Actor> {
  const recent = await scanner.recent();
  const seen = recent.actors.find((actor) => selects(actor, selector));
  return named(seen === undefined || scanner.stillHolds(recent, seen) ? recent : await scanner.fresh(), selector);
}

function named(found: ActorScan, selector: string): Actor {
  const { actors } = found;
  const matches = actors.filter((actor) => selects(actor, selector));
  const [actor] = matches;
  if (actor === undefined) throw notFound(`no actor ${JSON.stringify(selector)}; GET /api/actors lists them`);
  if (matches.length > 1)
    throw conflict(
      `${JSON.stringify(selector)} names ${matches.length} actors (${matches.map((a) => a.name).join(', ')}); use the full name`,
    );
  const problem = sharedProblem(actor, found);
  if (problem) throw conflict(problem);
  return actor;
}
