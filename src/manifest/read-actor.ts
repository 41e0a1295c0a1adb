/**
 * Everything known about one actor before hashing: its manifest, its legacy URLs, its local images.
 * Reading only; any bad file throws an InputError naming it, and the caller leaves the actor unchanged.
 */
import { basename, join } from 'node:path';
import { isImageName, listImages, type Actor, type LocalImage, type Skipped } from '../engine/discover.js';
import { InputError } from '../errors.js';
import { readJsonFile, shapeError } from './json-file.js';
import { MAX_MANIFEST_BYTES, type GuardedKey } from '../shared/json-scan.js';
import { readPromptMetadataFile, readResponseJsonFile, urlsByFilename, type PromptImage } from './legacy.js';
import { md5Hex } from '../md5/hex.js';
import { RETIRING_NAME, type LegacyFile } from '../engine/retire.js';
import { ManifestSchema, OWNED_FIELDS, OWNED_STATISTICS, type TrainingEntry } from './schema.js';
import type { DataRoot } from '../engine/root.js';
import { isSafeFilename, parseS3Url, type S3Location } from '../shared/s3-url.js';

export interface ActorFacts {
  actor: Actor;
  /** The manifest as parsed (every field, in order), or null when there is none yet. */
  manifest: Record<string, unknown> | null;
  /** The manifest file's mtime in ns: the moment its hashes were recorded, for the racily-clean rule. */
  manifestMtimeNs: string | null;
  /** The manifest has no write permission: someone froze it, so sync must not replace it. */
  manifestReadOnly: boolean;
  previous: TrainingEntry[];
  responsePath: string;
  /**
   * URLs of `response.json` (and of a `response.json.retiring` a stopped run left, retire.ts), or null when
   * the actor has neither.
   */
  legacyUrls: string[] | null;
  /** Those files as read: the one left aside first. Each is deleted only if it still holds these bytes. */
  legacyFiles: LegacyFile[];
  legacyByFilename: Map<string, string>;
  prompt: Map<string, PromptImage>;
  promptUrls: Map<string, string>;
  /** The bytes of prompt_metadata.json and of the manifest as read (null when there is none): what the sync cache fingerprints. */
  promptBytes: Buffer | null;
  manifestBytes: Buffer | null;
  images: LocalImage[];
  skipped: Skipped[];
}

export async function readActor(actor: Actor, data: DataRoot): Promise<ActorFacts> {
  const responsePath = join(actor.trainingDir, 'response.json');
  const promptPath = join(actor.trainingDir, 'prompt_metadata.json');
  const asidePath = join(actor.trainingDir, RETIRING_NAME);
  const ownFile = { within: { real: data.actorsReal, folder: 'actors' as const }, ownFolder: true };
  const [manifest, aside, response, prompt, listing] = await Promise.all([
    // Each folder is a root of its own: a manifest is read only inside the manifests folder, the rest only
    // inside the actors folder (symlinks resolved).
    readManifest(actor.manifestPath, data.manifestsReal),
    readResponseJsonFile(asidePath, ownFile),
    readResponseJsonFile(responsePath, ownFile),
    readPromptMetadataFile(promptPath, ownFile),
    listImages(actor, data),
  ]);
  const skipped = [...listing.skipped];
  const promptUrls = promptUrlsOf(prompt, promptPath, skipped);
  const legacy = legacyOf({ path: asidePath, file: aside }, { path: responsePath, file: response }, skipped);
  return {
    actor,
    manifest: manifest?.value ?? null,
    manifestMtimeNs: manifest?.mtimeNs ?? null,
    manifestReadOnly: manifest?.readOnly ?? false,
    previous: manifest?.entries ?? [],
    responsePath,
    ...legacy,
    prompt: prompt?.images ?? new Map(),
    promptBytes: prompt?.bytes ?? null,
    manifestBytes: manifest?.bytes ?? null,
    promptUrls,
    images: listing.images,
    skipped,
  };
}

type PromptMetadata = Awaited<ReturnType<typeof readPromptMetadataFile>>;

/** A legacy file's path, and its URLs and bytes as read (null when there is none). */
interface LegacyRead {
  path: string;
  file: Awaited<ReturnType<typeof readResponseJsonFile>>;
}

/** The URL of each image prompt_metadata.json names; a URL that names no image goes to `skipped`. */
function promptUrlsOf(prompt: PromptMetadata, promptPath: string, skipped: Skipped[]): Map<string, string> {
  // An image's filename is its URL's last segment (SPEC §2), whatever key prompt_metadata files it under.
  const promptLocations = [...(prompt?.images.values() ?? [])].flatMap((image) =>
    image.s3_url === undefined ? [] : [image.s3_url],
  );
  const promptUrls = new Map<string, string>();
  for (const [name, location] of urlsByFilename(promptLocations, promptPath)) {
    if (isImageName(name)) promptUrls.set(name, location.url);
    else skipped.push(notAnImage(promptPath, location, 'prompt_metadata.json is left as it is'));
  }
  return promptUrls;
}

/**
 * The legacy files (the one a stopped run left aside, then response.json), their URLs together, and the
 * URL of each image they name; a URL that names no image goes to `skipped`.
 */
function legacyOf(
  aside: LegacyRead,
  response: LegacyRead,
  skipped: Skipped[],
): Pick<ActorFacts, 'legacyUrls' | 'legacyFiles' | 'legacyByFilename'> {
  const legacyFiles: LegacyFile[] = [];
  let legacyUrls: string[] | null = null;
  for (const { path, file } of [aside, response]) {
    if (file === null) continue;
    legacyFiles.push({ path, md5: md5Hex(file.bytes) });
    legacyUrls = [...new Set([...(legacyUrls ?? []), ...file.urls])];
  }
  // With both files, each one's own problems are named by it, and a disagreement between them by the one a
  // stopped run left aside.
  if (aside.file && response.file) {
    urlsByFilename(aside.file.urls, aside.path);
    urlsByFilename(response.file.urls, response.path);
  }
  const named = aside.file ? aside.path : response.path;
  const legacyByFilename = new Map<string, string>();
  for (const [name, location] of urlsByFilename(legacyUrls ?? [], named)) {
    if (isImageName(name)) legacyByFilename.set(name, location.url);
    // Not an entry, so the manifest does not hold it, and the file is not retired: the URL is never lost.
    else
      skipped.push(
        notAnImage(
          named,
          location,
          `${basename(named)} is kept, so the URL is not lost (remove it from there by hand)`,
        ),
      );
  }
  return { legacyUrls, legacyFiles, legacyByFilename };
}

/**
 * A legacy URL whose filename is not an image name (`…/response.json`, `notes.txt`, `.hidden.png`): it is
 * reported, never made an entry, so no run pulls it into training_data (where a `response.json` would be
 * read as the actor's own legacy file).
 */
function notAnImage(file: string, location: S3Location, kept: string): Skipped {
  return {
    file,
    reason: `names ${location.url}, whose filename ${JSON.stringify(location.filename)} is not an image name; not recorded as an image, and ${kept}`,
  };
}

interface ManifestRead {
  value: Record<string, unknown>;
  bytes: Buffer;
  entries: TrainingEntry[];
  mtimeNs: string;
  readOnly: boolean;
}

/** Reads and checks a manifest: an object, owned fields of the right shape, safe filenames. */
export async function readManifest(path: string, manifestsReal?: string): Promise<ManifestRead | null> {
  // Manifests hold much more than training data: a larger limit than for legacy files. Its stats come
  // before its bytes: a write landing between the two only makes the recorded time older (safe).
  const within = manifestsReal === undefined ? undefined : { real: manifestsReal, folder: 'manifests' as const };
  const json = await readJsonFile(path, { within, maxBytes: MAX_MANIFEST_BYTES, guarded: ownedKey });
  if (json === null) return null;
  const parsed = ManifestSchema.safeParse(json.value);
  if (!parsed.success) throw shapeError(path, parsed.error, json.value);
  // zod's copies drop a key named `__proto__`: each entry is its checked fields over the whole entry as read.
  const raw = ((json.value as { training_data?: unknown }).training_data ?? []) as Record<string, unknown>[];
  const entries: TrainingEntry[] = (parsed.data.training_data ?? []).map((entry, i) => ({ ...raw[i], ...entry }));
  const seen = new Set<string>();
  for (const entry of entries) {
    if (!isSafeFilename(entry.filename)) {
      throw new InputError(
        path,
        `training_data has an unsafe filename ${JSON.stringify(entry.filename)}; left unchanged`,
      );
    }
    if (seen.has(entry.filename)) {
      throw new InputError(path, `training_data lists ${JSON.stringify(entry.filename)} twice; left unchanged`);
    }
    seen.add(entry.filename);
    if (entry.s3_url) checkEntryUrl(path, entry.filename, entry.s3_url);
  }
  const readOnly = (Number(json.stats.mode) & 0o222) === 0;
  return {
    value: json.value as Record<string, unknown>,
    bytes: json.bytes,
    entries,
    mtimeNs: json.stats.mtimeNs.toString(),
    readOnly,
  };
}

/**
 * The keys a manifest's rewrite depends on: the owned fields, every key of a training entry, and the owned
 * statistics. A key named twice anywhere else is kept as it is written, like all we do not own.
 */
const ownedKey: GuardedKey = (path, key) => {
  if (path.length === 0) return (OWNED_FIELDS as readonly string[]).includes(key);
  if (path[0] === 'training_data') return path.length === 2;
  return path[0] === 'statistics' && path.length === 1 && (OWNED_STATISTICS as readonly string[]).includes(key);
};

/** A manifest URL must be usable and name its own entry's file: push and pull act on it. */
function checkEntryUrl(path: string, filename: string, url: string): void {
  let location: S3Location;
  try {
    location = parseS3Url(url);
  } catch (error) {
    throw new InputError(
      path,
      `training_data entry ${JSON.stringify(filename)} has an unusable s3_url (${(error as Error).message}); left unchanged`,
    );
  }
  if (location.filename !== filename) {
    throw new InputError(
      path,
      `training_data entry ${JSON.stringify(filename)} has an s3_url naming ${JSON.stringify(location.filename)}; left unchanged`,
    );
  }
}
