/**
 * Whether a manifest's owned fields would change, and the bytes of a new one (splice.ts writes the owned
 * fields into an existing one).
 */
import { isPlainObject } from './json-file.js';
import { OWNED_STATISTICS, type TrainingEntry, type TrainingStatistics } from './schema.js';

type Json = Record<string, unknown>;

/** The manifest a run creates for an actor that has none. */
export function newManifest(actorId: string, actorName: string): Json {
  return { character_id: actorId, character_name: actorName };
}

/** True when the owned entries or statistics differ from what the manifest holds (the timestamp does not count). */
export function ownedFieldsDiffer(manifest: Json, entries: TrainingEntry[], statistics: TrainingStatistics): boolean {
  if (!sameEntries(manifest.training_data, entries)) return true;
  const stats = isPlainObject(manifest.statistics) ? manifest.statistics : {};
  return OWNED_STATISTICS.some((key) => stats[key] !== statistics[key]);
}

/**
 * Entries equal but for `s3_checked_at`: a remote check that finds nothing new must not rewrite the
 * manifest only to move that timestamp (it records the check that last changed something).
 */
export function sameEntries(a: unknown, b: unknown): boolean {
  if (!Array.isArray(a) || !Array.isArray(b)) return sameJson(a ?? null, b ?? null);
  return a.length === b.length && a.every((entry, i) => sameJson(entry, b[i], 's3_checked_at'));
}

/**
 * Deep equality of JSON values, blind to key order (a manifest another tool re-sorted holds the same data,
 * and zod hands back known keys first) and to keys holding `undefined`; `ignoredKey` is skipped at the top
 * level. Copies nothing: a warm run compares every actor's entries.
 */
export function sameJson(a: unknown, b: unknown, ignoredKey?: string): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a))
    return a.length === (b as unknown[]).length && a.every((item, i) => sameJson(item, (b as unknown[])[i]));
  let keysA = 0;
  for (const key of Object.keys(a)) {
    const value = (a as Json)[key];
    if (key === ignoredKey || value === undefined) continue;
    keysA += 1;
    if (!Object.hasOwn(b, key) || !sameJson(value, (b as Json)[key])) return false;
  }
  let keysB = 0;
  for (const key of Object.keys(b)) if (key !== ignoredKey && (b as Json)[key] !== undefined) keysB += 1;
  return keysA === keysB;
}

/** The bytes of a manifest on disk: 2-space indentation and a final newline. */
export function serializeManifest(manifest: Json): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
