/**
 * The studio's own list of actors, `data/actorsData.json` (its `id`, `name`, poster frames, prompts…), and
 * the actor list that keeps it as it is, with our row over each entry the way the studio's handler adds
 * its `training_data` (SPEC §6).
 */
import { realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Actor } from '../engine/discover.js';
import { InputError } from '../errors.js';
import { readJsonFile, shapeError } from '../manifest/json-file.js';
import { isInside, type DataRoot } from '../engine/root.js';
import { unreadable } from './http-errors.js';
import { StudioActorSchema, type ActorList, type ActorRow, type StudioActor } from './schema.js';

/** Where the studio keeps it, relative to the data root. */
export const STUDIO_ACTORS_FILE = 'data/actorsData.json';

/**
 * A reader of `data/actorsData.json`: its entries, or null when there is no such file. Parsed again only when
 * its size, mtime or inode changed (it is half a megabyte at the studio's 289 actors).
 * @throws {HttpError} 500 naming the file when it cannot be read or is not a list of `{id, name, …}`.
 */
export function studioActorsReader(data: DataRoot): () => Promise<StudioActor[] | null> {
  const path = join(data.root, STUDIO_ACTORS_FILE);
  let last: { token: string; actors: StudioActor[] } | undefined;
  return async () => {
    const found = await stat(path, { bigint: true }).catch(() => undefined);
    if (found === undefined) return null;
    const token = `${found.size}:${found.mtimeNs}:${found.ino}`;
    if (last?.token === token) return last.actors;
    const actors = await read(path, data.rootReal);
    if (actors === null) return null;
    last = { token, actors };
    return actors;
  };
}

async function read(path: string, rootReal: string): Promise<StudioActor[] | null> {
  try {
    // Like every file the server reads: only inside the data root (symlinks resolved).
    const real = await realpath(path).catch(() => path);
    if (!isInside(real, rootReal))
      throw new InputError(path, 'is a symlink leading out of the data root; not followed');
    const json = await readJsonFile(path);
    if (json === null) return null;
    const parsed = StudioActorSchema.array().safeParse(json.value);
    if (!parsed.success) throw shapeError(path, parsed.error, json.value);
    return parsed.data;
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    throw unreadable(`${STUDIO_ACTORS_FILE} cannot be used: ${error.reason.replace(/; left unchanged$/, '')}`);
  }
}

/**
 * The studio's entries in their order, each with the row of the actor folder of its `name` over it (an entry
 * with no folder here is kept alone, as the studio's handler keeps it); then each folder no entry names, as
 * `{id, name}` with its row. Without `data/actorsData.json` (`studio` null), every folder that way.
 */
export function studioList(studio: StudioActor[] | null, actors: Actor[], rows: ActorRow[]): ActorList {
  const byName = new Map(actors.map((actor, i) => [actor.name, rows[i]!]));
  const named = new Set<string>();
  const list: ActorList = (studio ?? []).map((entry) => {
    const row = byName.get(entry.name);
    if (row === undefined) return entry;
    named.add(entry.name);
    return { ...entry, ...row };
  });
  for (const [name, row] of byName) {
    // The studio's ids are numbers (`0` for the folder `0000_…`).
    if (!named.has(name))
      list.push({ id: /^\d+$/.test(row.actor_id) ? Number(row.actor_id) : row.actor_id, name, ...row });
  }
  return list;
}
