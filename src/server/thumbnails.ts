/**
 * Safe serving of an actor's local images: its training images (the page's thumbnails, and the studio's
 * `/data/actors/<name>/training_data/<file>`), its base image and its poster frames (`base_image/`,
 * `poster_frame/`). Only a file that is all of these is ever opened: named by a safe filename with an
 * image extension and not hidden, in one of those folders of an actor that discovery lists, whose real path
 * (symlinks resolved) is inside that same folder and the actors folder and still has an image name, and
 * that is a regular file when opened (O_NOFOLLOW and O_NONBLOCK: a symlink or FIFO swapped in at the last
 * moment is refused and cannot hang the server). Everything else is one 404, so an answer tells nothing
 * about what exists.
 */
import { constants, type Stats } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { imageContentType, isImageName, type Actor } from '../engine/discover.js';
import { isInside } from '../engine/root.js';
import { isSafeFilename } from '../shared/s3-url.js';
import { notFound } from './http-errors.js';

/** The folders of an actor whose images are served, as the studio names them. */
export const IMAGE_FOLDERS = ['training_data', 'base_image', 'poster_frame'] as const;
export type ImageFolder = (typeof IMAGE_FOLDERS)[number];

interface OpenImage {
  handle: FileHandle;
  stats: Stats;
  contentType: string;
}

/** True for a name the server may serve: what `listImages` would count as a training image. */
function isServable(name: string): boolean {
  return isSafeFilename(name) && isImageName(name);
}

/**
 * The real path of the actor's image `folder/filename` when the server may serve it (see above; whether it
 * is a regular file is checked when it is opened), else undefined.
 */
export async function servablePath(
  actor: Actor,
  actorsReal: string,
  folder: ImageFolder,
  filename: string,
): Promise<string | undefined> {
  if (!isServable(filename)) return undefined;
  const dir = folder === 'training_data' ? actor.trainingDir : join(actor.dir, folder);
  const folderReal = await realpath(dir).catch(() => undefined);
  const real = await realpath(join(dir, filename)).catch(() => undefined);
  // Inside the actor's folder, and inside the actors folder (the folder itself may be a symlink elsewhere).
  if (
    folderReal === undefined ||
    real === undefined ||
    !real.startsWith(folderReal + sep) ||
    !isInside(real, actorsReal) ||
    !isServable(basename(real))
  )
    return undefined;
  return real;
}

/** Opens a real path `servablePath` gave when it is (still) a regular file; undefined otherwise. */
export async function openServable(real: string): Promise<OpenImage | undefined> {
  const handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW).catch(
    () => undefined,
  );
  if (handle === undefined) return undefined;
  try {
    const stats = await handle.stat();
    if (stats.isFile()) return { handle, stats, contentType: imageContentType(real) };
  } catch {
    // unreadable: as if it were not there
  }
  await handle.close();
  return undefined;
}

/**
 * Opens `folder/filename` (decoded) of the actor `selector` names, when it is inside the actors folder (real path `actorsReal`).
 * @throws {HttpError} 404 for anything but a servable image; 400/409 from the actor lookup.
 */
export async function openActorImage(
  actorNamed: (selector: string) => Promise<Actor>,
  actorsReal: string,
  selector: string,
  folder: string,
  filename: string,
): Promise<OpenImage> {
  const missing = () =>
    notFound(`no image ${JSON.stringify(filename)} in the ${folder} of ${JSON.stringify(selector)}`);
  if (!(IMAGE_FOLDERS as readonly string[]).includes(folder) || !isServable(filename)) throw missing();
  const actor = await actorNamed(selector);
  const real = await servablePath(actor, actorsReal, folder as ImageFolder, filename);
  const image = real === undefined ? undefined : await openServable(real);
  if (image === undefined) throw missing();
  return image;
}

/** Answers the request with the opened image (200, or 304 when the client's copy is current); closes it. */
export async function sendThumbnail(req: IncomingMessage, res: ServerResponse, image: OpenImage): Promise<void> {
  const { handle, stats } = image;
  const etag = `W/"${stats.size.toString(16)}-${Math.trunc(stats.mtimeMs).toString(16)}-${stats.ino.toString(16)}"`;
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', stats.mtime.toUTCString());
  // The file may change at any time (that is what the page is for): revalidate every time.
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
  if (req.headers['if-none-match'] === etag) {
    await handle.close();
    res.writeHead(304).end();
    return;
  }
  res.writeHead(200, { 'Content-Type': image.contentType, 'Content-Length': stats.size });
  if (req.method === 'HEAD' || stats.size === 0) {
    await handle.close();
    res.end();
    return;
  }
  // Exactly the size announced, even if the file grows meanwhile; the stream closes the handle.
  const stream = handle.createReadStream({ start: 0, end: stats.size - 1 });
  await pipeline(stream, res).catch(() => {
    // The client went away or the file shrank: the response is cut short; nothing else to do.
    res.destroy();
  });
}
