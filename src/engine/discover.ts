/**
 * What is on disk, without opening anything: actor folders, their training images, their manifests.
 * Non-regular files named like images (folders, FIFOs, sockets) and symlinks leading out of the actors
 * folder are skipped with a warning, so nothing later can hang on them or read outside it. The actors
 * folder is a root of its own, wherever it is (`DataRoot.actorsReal`).
 */
import { isUtf8 } from 'node:buffer';
import { lstatSync, readdirSync, realpathSync, statSync, type Dirent, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { isInside, leadingOutOf, type DataRoot } from './root.js';
import { compareCodeUnits } from '../shared/order.js';

export interface Actor {
  /** The name's part before the first `_` (`0000`); a name without `_` is its own id. */
  id: string;
  name: string;
  dir: string;
  trainingDir: string;
  manifestPath: string;
  /** Set when the actor's folder is a symlink (to a folder inside the actors folder). */
  dirIsLink?: true;
}

export interface LocalImage {
  filename: string;
  path: string;
  /** Relative to the data root, `/`-separated, as the manifest records it. */
  localPath: string;
}

export interface Skipped {
  file: string;
  reason: string;
}

export const IMAGE_EXTENSION = /\.(jpe?g|png|gif|webp|avif|bmp)$/i;

/** A name a training image may have: an image extension, not hidden (.DS_Store, ._x.jpg). */
export function isImageName(name: string): boolean {
  return !name.startsWith('.') && IMAGE_EXTENSION.test(name);
}

const IMAGE_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  bmp: 'image/bmp',
};

/** The Content-Type of an image name (uploads, thumbnails); `application/octet-stream` for anything else. */
export function imageContentType(name: string): string {
  return IMAGE_TYPES[IMAGE_EXTENSION.exec(name)?.[1]?.toLowerCase() ?? ''] ?? 'application/octet-stream';
}

export function actorIdOf(name: string): string {
  const cut = name.indexOf('_');
  return cut === -1 ? name : name.slice(0, cut);
}

/** The actors any of `selectors` names; all of them when there is none. */
export function selectActors(actors: Actor[], selectors: readonly string[] | undefined): Actor[] {
  return selectors?.length ? actors.filter((actor) => selectors.some((selector) => selects(actor, selector))) : actors;
}

/**
 * `selectActors` for the selectors a user gave (`--actor`, ACTOR…).
 * @throws {UsageError} naming the first selector that matches no actor folder: a typo must fail a CI job,
 * not pass it as "0 actors". A shard that does not own a matched actor is no such error.
 */
export function selectNamedActors(
  actors: Actor[],
  selectors: readonly string[] | undefined,
  actorsDir: string,
): Actor[] {
  const unmatched = selectors?.find((selector) => !actors.some((actor) => selects(actor, selector)));
  if (unmatched !== undefined) throw new UsageError(`no actor matches ${JSON.stringify(unmatched)} (in ${actorsDir})`);
  return selectActors(actors, selectors);
}

/** True when `selector` (`0`, `0000` or the full name) names this actor. */
export function selects(actor: Pick<Actor, 'id' | 'name'>, selector: string): boolean {
  if (selector === actor.name || selector === actor.id) return true;
  return /^\d+$/.test(selector) && /^\d+$/.test(actor.id) && Number(selector) === Number(actor.id);
}

/** Every actor folder, sorted by name. Folders that are symlinks out of the actors folder are skipped. */
export async function listActors(data: DataRoot): Promise<{ actors: Actor[]; skipped: Skipped[] }> {
  // Loaded here, not at the top: the worker threads import this module for listImages only.
  const { default: fg } = await import('fast-glob');
  const entries = await fg('*', {
    cwd: data.actorsDir,
    onlyFiles: false,
    deep: 1,
    dot: false,
    followSymbolicLinks: false,
    objectMode: true,
  });
  const actors: Actor[] = [];
  const skipped: Skipped[] = [];
  const folders = entries.filter((entry) => entry.dirent.isDirectory() || entry.dirent.isSymbolicLink());
  const notUtf8 = notUtf8Names(
    data.actorsDir,
    folders.map((entry) => entry.name),
  );
  if (notUtf8.size > 0) skipped.push(notUtf8Warning(data.actorsDir, 'an actor folder', notUtf8));
  for (const entry of entries.sort((a, b) => compareCodeUnits(a.name, b.name))) {
    const dir = join(data.actorsDir, entry.name);
    const isLink = entry.dirent.isSymbolicLink();
    if ((!entry.dirent.isDirectory() && !isLink) || notUtf8.has(entry.name)) continue;
    // Only a symlink can lead elsewhere: a real folder is inside the actors folder, wherever that is.
    if (isLink && !(await reallyInside(dir, data.actorsReal))) {
      skipped.push({ file: dir, reason: `${leadingOutOf('actors')}; not followed` });
      continue;
    }
    if (isLink && !(await stat(dir).catch(() => undefined))?.isDirectory()) continue;
    const id = actorIdOf(entry.name);
    actors.push({
      id,
      name: entry.name,
      dir,
      trainingDir: join(dir, 'training_data'),
      manifestPath: join(data.manifestsDir, `${id}_manifest.json`),
      ...(isLink ? { dirIsLink: true as const } : {}),
    });
  }
  return { actors, skipped };
}

/** The actor's training images: regular files (or symlinks to regular files inside the actors folder) with an image extension, hidden files ignored. */
export async function listImages(actor: Actor, data: DataRoot): Promise<{ images: LocalImage[]; skipped: Skipped[] }> {
  // One flat folder, read synchronously: this runs in a worker thread, once per actor, where a glob
  // engine's set-up and each thread-pool round trip would only add latency.
  let entries: Dirent[];
  try {
    // A folder that is a symlink out of the actors folder would bring files from elsewhere into the manifest
    // (and the API, and a push): the actor is left as it is.
    if (
      lstatSync(actor.trainingDir, { throwIfNoEntry: false })?.isSymbolicLink() &&
      !isInside(realpathSync.native(actor.trainingDir), data.actorsReal)
    ) {
      throw new InputError(actor.trainingDir, `${leadingOutOf('actors')}; not followed; left unchanged`);
    }
    entries = readdirSync(actor.trainingDir, { withFileTypes: true });
  } catch (error) {
    if (error instanceof InputError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { images: [], skipped: [] };
    throw new InputError(
      actor.trainingDir,
      `cannot be listed (${(error as NodeJS.ErrnoException).code}); left unchanged`,
    );
  }
  const images: LocalImage[] = [];
  const skipped: Skipped[] = [];
  // A plain name below the folder: the folder's own relative path is worked out once, not per image.
  const folder = relative(data.root, actor.trainingDir).split(sep).join('/');
  // A folder entry's name holds no separator: concatenation is path.join here, without its normalising.
  const dir = actor.trainingDir + sep;
  const notUtf8 = notUtf8Names(
    actor.trainingDir,
    entries.filter((entry) => isImageName(entry.name)).map((entry) => entry.name),
  );
  if (notUtf8.size > 0) skipped.push(notUtf8Warning(actor.trainingDir, 'an image', notUtf8));
  for (const entry of entries) {
    if (!isImageName(entry.name) || notUtf8.has(entry.name)) continue;
    const path = dir + entry.name;
    const problem = entry.isFile() ? undefined : whyNotAnImage(path, entry.isSymbolicLink(), data.actorsReal);
    if (problem) skipped.push({ file: path, reason: problem });
    else images.push({ filename: entry.name, path, localPath: folder === '' ? entry.name : `${folder}/${entry.name}` });
  }
  return { images, skipped };
}

function whyNotAnImage(path: string, isLink: boolean, actorsReal: string): string | undefined {
  if (isLink) {
    let target: string;
    try {
      target = realpathSync.native(path);
    } catch (error) {
      return `a symlink that cannot be resolved (${(error as NodeJS.ErrnoException).code}); skipped`;
    }
    if (!isInside(target, actorsReal)) return `${leadingOutOf('actors')}; not followed`;
    if (statSync(target, { throwIfNoEntry: false })?.isFile()) return undefined;
  }
  return 'not a regular file; skipped';
}

/**
 * Which of `names` (as read from `dir`) stand for names that are not UTF-8: each maps to how its bytes are
 * shown (`\xNN` for every byte outside printable ASCII). Node reads such a name with U+FFFD for each bad
 * byte, a name no file has, and no manifest could name the file: a folder is read again as bytes only when
 * a name holds U+FFFD, so a folder of valid names costs nothing more.
 */
function notUtf8Names(dir: string, names: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  if (!names.some((name) => name.includes('\uFFFD'))) return found;
  const wanted = new Set(names);
  let raw: Buffer[];
  try {
    raw = readdirSync(dir, { encoding: 'buffer' });
  } catch {
    return found; // gone meanwhile: the caller's own reads say so
  }
  for (const name of raw) {
    const read = name.toString('utf8');
    if (!isUtf8(name) && wanted.has(read))
      found.set(
        read,
        [...name]
          .map((byte) =>
            byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`,
          )
          .join(''),
      );
  }
  return found;
}

/** The one warning for a folder holding names that are not UTF-8: what they are, that they are skipped, what to do. */
function notUtf8Warning(
  dir: string,
  what: 'an image' | 'an actor folder',
  names: ReadonlyMap<string, string>,
): Skipped {
  const shown = [...names.values()].map((name) => `"${name}"`).join(', ');
  const reason =
    names.size === 1
      ? `holds ${what} whose name is not UTF-8 (${shown}); a manifest cannot name it, so it is skipped; rename it to a UTF-8 name`
      : `holds ${names.size} ${what.slice(what.indexOf(' ') + 1)}s whose names are not UTF-8 (${shown}); a manifest cannot name them, so they are skipped; rename them to UTF-8 names`;
  return { file: dir, reason };
}

async function reallyInside(path: string, folderReal: string): Promise<boolean> {
  const target = await realpath(path).catch(() => undefined);
  return target !== undefined && isInside(target, folderReal);
}

/** An actor's training_data folder or manifest that another actor reaches too. */
export interface SharedPath {
  what: 'training_data' | 'manifest';
  /** This actor's own path to it. */
  file: string;
  /** Where it really is (symlinks resolved). */
  real: string;
  /** The other actors reaching it, by name. */
  others: string[];
}

/**
 * Actors whose `training_data` folder or manifest is also another actor's once symlinks are followed, by
 * actor name (SPEC §3 invariant 3). Such an actor would read the other's images or `response.json` as its
 * own, retire it, or rewrite the other's manifest: every actor reaching the shared folder or file fails.
 * Judged over every actor folder, not only those a run selects. Cheap, as it runs before every run: one
 * lstat per actor and one listing of the manifests folder; a real path is resolved only where a symlink is
 * (anything else is where its path says, below the folder's real path). Actors sharing an id share their
 * manifest path: `actorsSharingIds` names those.
 */
export function actorsSharingPaths(actors: Actor[], data: DataRoot): Map<string, SharedPath> {
  let manifests: Dirent[] = [];
  try {
    manifests = readdirSync(data.manifestsDir, { withFileTypes: true });
  } catch {
    // No manifests folder yet: no manifest to share.
  }
  const linkedManifests = new Set(manifests.filter((entry) => entry.isSymbolicLink()).map((entry) => entry.name));
  const presentManifests = new Set(manifests.map((entry) => entry.name));
  const realOf = {
    training_data: (actor: Actor): string | undefined => {
      const stats = lstatOrUndefined(actor.trainingDir);
      if (stats === undefined) return undefined;
      // A folder name holds no separator: concatenation is path.join here, without its normalising.
      return actor.dirIsLink || stats.isSymbolicLink()
        ? realpathOrUndefined(actor.trainingDir)
        : `${data.actorsReal}${sep}${actor.name}${sep}training_data`;
    },
    manifest: (actor: Actor): string | undefined => {
      const name = basename(actor.manifestPath);
      if (linkedManifests.has(name)) return realpathOrUndefined(actor.manifestPath);
      return presentManifests.has(name) ? data.manifestsReal + sep + name : undefined;
    },
  };
  const shared = new Map<string, SharedPath>();
  for (const what of ['training_data', 'manifest'] as const) {
    const pathOf = (actor: Actor) => (what === 'manifest' ? actor.manifestPath : actor.trainingDir);
    const byReal = new Map<string, Actor[]>();
    for (const actor of actors) {
      const real = realOf[what](actor);
      if (real === undefined) continue;
      const group = byReal.get(real);
      if (group) group.push(actor);
      else byReal.set(real, [actor]);
    }
    for (const [real, group] of byReal) {
      if (group.length < 2 || new Set(group.map(pathOf)).size < 2) continue;
      for (const actor of group) {
        const others = group.filter((other) => pathOf(other) !== pathOf(actor)).map((other) => other.name);
        if (!shared.has(actor.name)) shared.set(actor.name, { what, file: pathOf(actor), real, others });
      }
    }
  }
  return shared;
}

/** Why an actor reaching a shared path fails (the file to name is `shared.file`); `outcome`: what happens now. */
export function sharedPathReason({ what, real, others }: SharedPath, outcome: string): string {
  const kind = what === 'manifest' ? 'file' : 'folder';
  return `is the same ${kind} as the ${what} of ${others.join(', ')} (${real}): an actor's ${what} must be its own (make it a ${kind} of its own); ${outcome}`;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined; // unreadable: the actor's own assessment says why
  }
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync.native(path);
  } catch {
    return undefined; // a loop or a dangling link reaches nothing to share; the actor's own assessment says why
  }
}

/** Ids that more than one folder maps to, with those folders' names. */
export function actorsSharingIds(actors: Actor[]): Map<string, string[]> {
  const byId = new Map<string, string[]>();
  for (const actor of actors) byId.set(actor.id, [...(byId.get(actor.id) ?? []), actor.name]);
  return new Map([...byId].filter(([, names]) => names.length > 1));
}

export interface Refusal {
  file: string;
  reason: string;
}

/**
 * The actors that fail before anything is read, by name: those whose folders share an id (so a manifest),
 * and those whose training_data or manifest is another actor's too. `outcome` ends each reason.
 */
export function refusedActors(
  actors: Actor[],
  data: DataRoot,
  outcome: { path: string; id: string },
): Map<string, Refusal> {
  const refused = new Map<string, Refusal>();
  for (const [name, shared] of actorsSharingPaths(actors, data))
    refused.set(name, { file: shared.file, reason: sharedPathReason(shared, outcome.path) });
  for (const [id, names] of actorsSharingIds(actors)) {
    for (const actor of actors.filter((a) => a.id === id)) {
      refused.set(actor.name, {
        file: actor.dir,
        reason: `${names.length} actor folders share the id ${id} (${names.join(', ')}), so they would share ${actor.manifestPath}; rename one; ${outcome.id}`,
      });
    }
  }
  return refused;
}
