/** Retiring a legacy `response.json`, only once the manifest holding all its URLs is durable (SPEC §3, invariant 2). */
import { unlink } from 'node:fs/promises';
import type { TrainingEntry } from './manifest/schema.js';

/** The URLs of `response.json` that no entry holds: retiring is allowed only when this is empty. */
export function urlsNotHeld(urls: readonly string[], entries: readonly TrainingEntry[]): string[] {
  const held = new Set(entries.map((entry) => entry.s3_url));
  return urls.filter((url) => !held.has(url));
}

/**
 * Deletes `response.json`. The deletion need not be durable: if a crash undoes it, the file comes back
 * with URLs the manifest already holds, and the next run retires it again.
 */
export async function retireResponseJson(path: string): Promise<void> {
  await unlink(path);
}
