/**
 * From a URL segment to an actor folder: decoding and validating the segment (400), finding the actor by
 * `0`, `0000` or its full name among the folders `listActors` finds (404), and refusing a name that more
 * than one folder answers to (409). Nothing here builds a path from the request: an actor is always one
 * that discovery listed.
 */
import { actorsSharingIds, actorsSharingPaths, listActors, selects, type Actor, type SharedPath } from '../discover.js';
import type { DataRoot } from '../root.js';
import { isSafeFilename } from '../s3-url.js';
import { coalesce } from './coalesce.js';
import { badRequest, conflict, notFound } from './errors.js';

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
    throw badRequest(`${what} is malformed: it must be a single name, without "/", "\\", control characters, "." or ".."`);
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

/**
 * Scans the data root's actor folders: afresh for every call, but calls that come together share a scan
 * (see coalesce.ts), so the 17 thumbnails of a page and its API request do not each list every folder.
 */
export function actorScanner(data: DataRoot): () => Promise<ActorScan> {
  const scan = coalesce(
    () => 'actors',
    async (): Promise<ActorScan> => {
      const { actors } = await listActors(data);
      return { actors, shared: actorsSharingIds(actors), sharedPaths: actorsSharingPaths(actors, data) };
    },
  );
  return () => scan(undefined);
}

/**
 * Why an actor cannot be answered for, when its id, folder or manifest is shared: a shared id in the words
 * `sync` uses, a shared folder or manifest without its paths.
 */
export function sharedProblem(actor: Actor, { shared, sharedPaths }: Pick<ActorScan, 'shared' | 'sharedPaths'>): string | null {
  const names = shared.get(actor.id);
  if (names) return `${names.length} actor folders share the id ${actor.id} (${names.join(', ')}), so they would share one manifest; rename one`;
  // Named without paths: an answer never shows where on disk the data is.
  const path = sharedPaths.get(actor.name);
  return path ? `its ${path.what} is also the ${path.what} of ${path.others.join(', ')} (a symlink); an actor's ${path.what} must be its own` : null;
}

/**
 * The one actor `selector` (already decoded) names.
 * @throws {HttpError} 404 when none does, 409 when it is ambiguous or its id, training_data or manifest is shared.
 */
export async function findActor(scan: () => Promise<ActorScan>, selector: string): Promise<Actor> {
  const found = await scan();
  const { actors } = found;
  const matches = actors.filter((actor) => selects(actor, selector));
  const [actor] = matches;
  if (actor === undefined) throw notFound(`no actor ${JSON.stringify(selector)}; GET /api/actors lists them`);
  if (matches.length > 1) throw conflict(`${JSON.stringify(selector)} names ${matches.length} actors (${matches.map((a) => a.name).join(', ')}); use the full name`);
  const problem = sharedProblem(actor, found);
  if (problem) throw conflict(problem);
  return actor;
}
