/**
 * The legacy files of a `training_data` folder (SPEC §2): `response.json`, whose S3 URLs the manifest
 * takes over before the file is retired, and `prompt_metadata.json`, which names an S3 URL and a
 * `good` mark per image. Reading only; what to do with a bad file is the caller's decision.
 */
import * as z from 'zod';
import type { GuardedKey } from '../shared/json-scan.js';
import { isNot, isPlainObject, problem, readJsonFile, shapeError, type ReadJsonOptions } from './json-file.js';
import { isSafeFilename, parseS3Url, sameObject, UrlError, type S3Location } from '../shared/s3-url.js';

/**
 * `response.json`: the reply of the training job. Only `output.output.s3_image_urls` is ours; the
 * objects around it vary between jobs (`actor_id` or `character_id`, extra keys) and pass through.
 */
const ResponseJsonSchema = z.looseObject({
  output: z.looseObject({
    output: z.looseObject({
      s3_image_urls: z.array(z.string()),
    }),
  }),
});

/** One entry of `prompt_metadata.json`'s `images`. `null` is read as absent (Python writes `None`), and so is an empty `s3_url`. */
const PromptImageSchema = z.looseObject({
  s3_url: z.string().nullish(),
  good: z.boolean().nullish(),
});

/** `prompt_metadata.json`. `images` is checked entry by entry (see `readPromptMetadataFile`). */
const PromptMetadataSchema = z.looseObject({
  images: z.unknown().optional(),
});

/** What `prompt_metadata.json` says about one image. */
export interface PromptImage {
  s3_url?: string;
  good?: boolean;
}

/**
 * A key on the way to the URLs: named twice, JSON.parse keeps one list and retiring the file would lose the
 * other. Other keys named twice (`status`, `actor_id`) are not read.
 */
const urlsKey: GuardedKey = (path, key) =>
  URLS_PATH[path.length] === key && path.every((part, i) => part === URLS_PATH[i]);
const URLS_PATH = ['output', 'output', 's3_image_urls'];

/**
 * Reads `<training_data>/response.json`: the URLs at `output.output.s3_image_urls`, in file order, with the
 * bytes they were parsed from; `null` when there is no such file.
 * @throws {InputError} naming the file: unreadable, not UTF-8, invalid JSON, or a wrong shape.
 */
export async function readResponseJsonFile(
  path: string,
  options: ReadJsonOptions = {},
): Promise<{ urls: string[]; bytes: Buffer } | null> {
  const json = await readJsonFile(path, { ...options, guarded: urlsKey });
  if (json === null) return null;
  const parsed = ResponseJsonSchema.safeParse(json.value);
  if (!parsed.success) throw shapeError(path, parsed.error, json.value);
  return { urls: parsed.data.output.output.s3_image_urls, bytes: json.bytes };
}

/**
 * Reads `prompt_metadata.json`: for each filename under `images`, its `s3_url` and `good`, when
 * given, with the bytes they were parsed from. `null` when there is no such file; no images when it has no `images`.
 * @throws {InputError} naming the file: unreadable, invalid JSON, a wrong type at any level, or a
 *   filename under `images` that is not safe in a folder (`..`, `a/b`).
 */
export async function readPromptMetadataFile(
  path: string,
  options: ReadJsonOptions = {},
): Promise<{ images: Map<string, PromptImage>; bytes: Buffer } | null> {
  const json = await readJsonFile(path, options);
  if (json === null) return null;
  const top = PromptMetadataSchema.safeParse(json.value);
  if (!top.success) throw shapeError(path, top.error, json.value);
  const images = top.data.images;
  const result = new Map<string, PromptImage>();
  if (images === undefined) return { images: result, bytes: json.bytes };
  if (!isPlainObject(images)) throw problem(path, `images ${isNot('an object', images)}`);
  // Own keys of the parsed JSON, not a zod record: a record silently drops a key named `__proto__`.
  for (const [filename, raw] of Object.entries(images)) {
    const entry = PromptImageSchema.safeParse(raw);
    if (!entry.success) throw shapeError(path, entry.error, raw, ['images', filename]);
    if (!isSafeFilename(filename)) throw problem(path, `images has an unsafe filename ${JSON.stringify(filename)}`);
    const image: PromptImage = {};
    // An empty URL is no URL (as in a manifest entry).
    if (entry.data.s3_url) image.s3_url = entry.data.s3_url;
    if (entry.data.good != null) image.good = entry.data.good;
    result.set(filename, image);
  }
  return { images: result, bytes: json.bytes };
}

/**
 * Parses each URL and indexes the locations by filename. The same object twice (one URL, or two forms of it) is kept once, as first given.
 * @param file the file the URLs came from, named in every error.
 * @throws {InputError} naming `file` and the URL: an unparseable or unsafe URL, or two different URLs
 *   with one filename (a manifest keeps one entry per filename, and neither URL may be lost).
 */
export function urlsByFilename(urls: Iterable<string>, file: string): Map<string, S3Location> {
  const byFilename = new Map<string, S3Location>();
  for (const url of urls) {
    let location: S3Location;
    try {
      location = parseS3Url(url);
    } catch (error) {
      if (error instanceof UrlError) throw problem(file, error.message);
      throw error;
    }
    const earlier = byFilename.get(location.filename);
    if (earlier !== undefined && !sameObject(earlier.url, url)) {
      throw problem(
        file,
        `two different URLs have the filename ${JSON.stringify(location.filename)} ` +
          `(${JSON.stringify(earlier.url)} and ${JSON.stringify(url)}), and only one can be kept`,
      );
    }
    if (earlier === undefined) byFilename.set(location.filename, location); // the same object again: the first form stays
  }
  return byFilename;
}
