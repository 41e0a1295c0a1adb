/**
 * The actor's base image, where the studio keeps it: `data/actors/<name>/base_image/<name>_base.png`
 * (the manifests' `base_images[].moved_relative_path`). Looked up on disk, not taken from the manifest:
 * the manifests record paths on the machine that made them.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { naturalCompare } from '../classify.js';
import { isImageName, type Actor } from '../discover.js';
import { isInside } from '../root.js';

/**
 * Absolute path of the first image file in `<actor dir>/base_image/`, `<name>_base.*` before the others
 * (then natural order); null when there is none. Hidden files, non-files and symlinks leading out of the
 * actors folder (real path `actorsReal`) do not count.
 */
export async function findBaseImage(actor: Actor, actorsReal: string): Promise<string | null> {
  const dir = join(actor.dir, 'base_image');
  const names = await readdir(dir).catch(() => [] as string[]);
  const preferred = `${actor.name}_base.`;
  const candidates = names
    .filter(isImageName)
    .sort((a, b) => Number(!a.startsWith(preferred)) - Number(!b.startsWith(preferred)) || naturalCompare(a, b));
  for (const name of candidates) {
    const path = join(dir, name);
    const real = await realpath(path).catch(() => undefined);
    if (real === undefined || !isInside(real, actorsReal)) continue;
    if ((await stat(real).catch(() => undefined))?.isFile()) return path;
  }
  return null;
}
