/**
 * Everything known about one actor before hashing: its manifest, its legacy URLs, its local images.
 * Reading only; any bad file throws an InputError naming it, and the caller leaves the actor unchanged.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { listImages, type Actor, type LocalImage, type Skipped } from './discover.js';
import { InputError } from './errors.js';
import { readJsonFile, shapeError } from './json-file.js';
import { readPromptMetadata, readResponseJson, urlsByFilename, type PromptImage } from './legacy.js';
import { ManifestSchema, type TrainingEntry } from './manifest/schema.js';
import type { DataRoot } from './root.js';
import { isSafeFilename } from './s3-url.js';

export interface ActorFacts {
  actor: Actor;
  /** The manifest as parsed (every field, in order), or null when there is none yet. */
  manifest: Record<string, unknown> | null;
  /** The manifest file's mtime in ns: the moment its hashes were recorded, for the racily-clean rule. */
  manifestMtimeNs: string | null;
  previous: TrainingEntry[];
  responsePath: string;
  /** URLs of `response.json`, or null when the actor has none. */
  legacyUrls: string[] | null;
  legacyByFilename: Map<string, string>;
  prompt: Map<string, PromptImage>;
  promptUrls: Map<string, string>;
  images: LocalImage[];
  skipped: Skipped[];
}

export async function readActor(actor: Actor, data: DataRoot): Promise<ActorFacts> {
  const responsePath = join(actor.trainingDir, 'response.json');
  const promptPath = join(actor.trainingDir, 'prompt_metadata.json');
  const [manifest, legacyUrls, prompt, listing] = await Promise.all([
    readManifest(actor.manifestPath),
    readResponseJson(responsePath),
    readPromptMetadata(promptPath),
    listImages(actor, data),
  ]);
  // An image's filename is its URL's last segment (SPEC §2), whatever key prompt_metadata files it under.
  const promptLocations = [...(prompt?.values() ?? [])].flatMap((image) => (image.s3_url === undefined ? [] : [image.s3_url]));
  const promptUrls = new Map<string, string>();
  for (const [name, location] of urlsByFilename(promptLocations, promptPath)) promptUrls.set(name, location.url);
  const legacyByFilename = new Map<string, string>();
  for (const [name, location] of urlsByFilename(legacyUrls ?? [], responsePath)) legacyByFilename.set(name, location.url);
  return {
    actor,
    manifest: manifest?.value ?? null,
    manifestMtimeNs: manifest?.mtimeNs ?? null,
    previous: manifest?.entries ?? [],
    responsePath,
    legacyUrls,
    legacyByFilename,
    prompt: prompt ?? new Map(),
    promptUrls,
    images: listing.images,
    skipped: listing.skipped,
  };
}

interface ManifestRead {
  value: Record<string, unknown>;
  entries: TrainingEntry[];
  mtimeNs: string;
}

/** Reads and checks a manifest: an object, owned fields of the right shape, safe filenames. */
export async function readManifest(path: string): Promise<ManifestRead | null> {
  // The stat comes first: a write landing between the two only makes the recorded time older (safe).
  const stats = statSync(path, { bigint: true, throwIfNoEntry: false });
  const json = await readJsonFile(path);
  if (json === null) return null;
  const parsed = ManifestSchema.safeParse(json.value);
  if (!parsed.success) throw shapeError(path, parsed.error, json.value);
  const entries = parsed.data.training_data ?? [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (!isSafeFilename(entry.filename)) {
      throw new InputError(path, `training_data has an unsafe filename ${JSON.stringify(entry.filename)}; left unchanged`);
    }
    if (seen.has(entry.filename)) {
      throw new InputError(path, `training_data lists ${JSON.stringify(entry.filename)} twice; left unchanged`);
    }
    seen.add(entry.filename);
  }
  return { value: json.value as Record<string, unknown>, entries, mtimeNs: (stats?.mtimeNs ?? 0n).toString() };
}
