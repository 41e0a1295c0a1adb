/** Retiring a legacy `response.json`, only once the manifest holding all its URLs is durable (SPEC §3, invariant 2). */
import { link, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { md5Hex } from '../md5/hex.js';
import type { TrainingEntry } from '../manifest/schema.js';
import { objectIdOf } from '../shared/s3-url.js';

/**
 * Where a `response.json` is moved while it is checked before it is deleted. A run that stops in between
 * leaves it there, and the next run reads it as a legacy file of the actor, beside any new response.json.
 */
export const RETIRING_NAME = 'response.json.retiring';

/** One legacy file of an actor as it was read: its path and the MD5 of its bytes. */
export interface LegacyFile {
  path: string;
  md5: string;
}

/**
 * The URLs of `response.json` whose object no entry holds (by bucket and key, in whatever URL form): retiring
 * is allowed only when this is empty.
 */
export function urlsNotHeld(urls: readonly string[], entries: readonly TrainingEntry[]): string[] {
  const held = new Set(entries.flatMap((entry) => (entry.s3_url ? [objectIdOf(entry.s3_url)] : [])));
  return urls.filter((url) => !held.has(objectIdOf(url)));
}

/**
 * Deletes a legacy file if it still holds the bytes that were read. A `response.json` is first renamed to
 * {@link RETIRING_NAME} (one step, so nothing written at its path can be deleted in its place), checked
 * there, then deleted; one that changed since it was read (it may name URLs no manifest holds) is put back,
 * never over a file written at its path meanwhile (then it stays aside, where the next run reads it).
 * The deletion need not be durable: if a crash undoes it, the file comes back with URLs the manifest
 * already holds, and the next run retires it again.
 * @returns 'retired' (also when it is gone already), or 'changed' when it was kept.
 */
export async function retireLegacyFile(file: LegacyFile): Promise<'retired' | 'changed'> {
  const aside = join(dirname(file.path), RETIRING_NAME);
  try {
    if (file.path !== aside) await rename(file.path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'retired';
    throw error;
  }
  if (md5Hex(await readFile(aside)) === file.md5) {
    await unlink(aside);
    return 'retired';
  }
  if (file.path !== aside) {
    try {
      await link(aside, file.path); // fails when a new file took the name: this one then stays aside
      await unlink(aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return 'changed';
}
