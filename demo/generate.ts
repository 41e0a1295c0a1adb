/**
 * A synthetic studio data root for the demo, the tests and the benchmark: actors, training images,
 * legacy `response.json` / `prompt_metadata.json` files and manifests, shaped like the real samples in
 * `shared/fixtures/actor_maker-sample/`. Everything follows from `seed`; nothing reads the clock or
 * `Math.random`, so two runs with the same options produce the same bytes.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { actorIdOf } from '../src/engine/discover.js';

/** What `generateDataRoot` builds; every field is optional. */
export interface GenerateOptions {
  /** Number of actors, ids `0000`, `0001`, … Default 289. */
  actors?: number;
  /** Images per actor, varied by ±2 per actor (not for the seed's actor 0000, which has 17). Default 17. */
  imagesPerActor?: number;
  /** Smallest image, in bytes. Default 2 000 (the benchmark uses 150 000). */
  minBytes?: number;
  /** Largest image, in bytes. Default 12 000 (the benchmark uses 500 000). */
  maxBytes?: number;
  /** Every `legacyEvery`-th actor (0000, 0003, …) has a `response.json`; 0 means none but the seed's actor 0000. Default 3. */
  legacyEvery?: number;
  /** Everything (sizes, bytes, which images are listed) derives from it. Default 1. */
  seed?: number;
  /** Actor 0000 is exactly the seed's example (17 local images, 12 URLs, one duplicate). Default true. */
  seedActor0000?: boolean;
  /** Manifests carry `metadata`, `base_images`, `scene_images`, `statistics`, `status`. Default true. */
  richManifests?: boolean;
  /** S3 prefix of every URL in the legacy files; the actor's name and the filename are appended. */
  bucketUrl?: string;
}

/** One generated actor: what is on disk and which S3 URLs its legacy files name. */
export interface GeneratedActor {
  id: string;
  name: string;
  /** Local image filenames, in natural order. */
  images: string[];
  /**
   * Every URL of its `response.json` (empty when it has none). `prompt_metadata.json` never names a URL
   * outside this list, so these are all the S3 URLs the actor has; a URL whose filename is not in
   * `images` is an s3_only image.
   */
  legacyUrls: string[];
  /** False for the ~1 in 20 actors left without a manifest, so that `sync` reports one as created. */
  hasManifest: boolean;
}

/** The generated data root and its totals (images only; JSON files are not counted). */
export interface GeneratedRoot {
  /** Absolute path of the data root: it holds `data/actors` and `data/actor_manifests`. */
  root: string;
  actors: GeneratedActor[];
  totalBytes: number;
  totalImages: number;
}

const DEFAULTS: Required<GenerateOptions> = {
  actors: 289,
  imagesPerActor: 17,
  minBytes: 2_000,
  maxBytes: 12_000,
  legacyEvery: 3,
  seed: 1,
  seedActor0000: true,
  richManifests: true,
  bucketUrl: 'https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data',
};

const SEED_NAME = '0000_european_16_male';
const SEED_LISTED = [4, 6, 8, 9, 10, 11, 12, 13]
  .map((i) => `${SEED_NAME}_${i}.png`)
  .concat([14, 15, 16, 17].map((i) => `${SEED_NAME}_${i}.jpg`));
const SEED_LOCAL = [0, 1, 2, 3].map((i) => `${SEED_NAME}_${i}.png`).concat(`${SEED_NAME}_4.jpg`, SEED_LISTED);
const DUPLICATE = { of: `${SEED_NAME}_4.png`, copy: `${SEED_NAME}_4.jpg` };

// The fixture's names for the first actors; later ones follow a formula in the same style.
const KNOWN_NAMES = [
  'european_16_male',
  'european_20_female',
  'european_35_female',
  'european_25_male',
  'european_35_male',
];
const ETHNICITIES = ['european', 'african', 'asian', 'hispanic', 'indian', 'arabic'];
const AGES = [16, 20, 25, 30, 35, 45, 55, 65, 75];
const OUTFITS = [
  'Casual high school attire with a graphic t-shirt, jeans, and worn sneakers.',
  'Bohemian-style floral sundress with a denim jacket and ankle boots.',
  'Elegant business attire with a tailored blazer, silk blouse, and pencil skirt.',
  'Smart-casual work attire with a button-up shirt, chinos, and leather loafers.',
  'Weathered field jacket over a wool sweater, cargo trousers and hiking boots.',
];
// Prompt styles taken from the fixture's prompt_metadata.json; the first four are actor 0000's, in order.
const STYLES = [
  'A dynamic comic book illustration of the {who} leaping a narrow rooftop gap at night with a city skyline behind. Low angle, foreshortened limbs, speed lines, bold inks, cel-shaded color, limited palette with halftone dots. Preserve identity and key attributes. Illustration style, not photorealistic.',
  "A black-and-white pen and ink line drawing of the {who} tying their bootlaces on a townhouse stoop under a single streetlamp in light rain. Three-quarter side view, mid shot. High-contrast lines with crosshatching and stippling for shading, no grayscale gradients, clean white negative space. Preserve the subject's defining features. Illustration only, not photorealistic.",
  'A black-and-white charcoal sketch of the {who} glancing over their shoulder in a narrow alley. Loose, expressive strokes, smudged shadows, high contrast, no color. Preserve identity. Illustration, not photorealistic.',
  'A watercolor painting of the {who} seated at a cafe window, looking out at a rainy street. Soft washes, wet-on-wet blending, visible brush strokes, muted palette. Preserve facial features. Illustration, not photorealistic.',
  'A gouache painting of the {who} ascending a concrete stairwell, caught mid-step. Low angle, chunky brush strokes, matte opaque paint, simplified forms with saturated accents. Preserve facial features and hairstyle. Illustration, not photorealistic.',
  'A black-and-white woodcut print of the {who} climbing a fire escape at dusk. Bold angular cuts, stark black and white, no grayscale, heavy grain texture. Preserve key features. Illustration, not photorealistic.',
];
const SEED_GENERATED_AT = [
  '2025-10-16T11:47:03.874649',
  '2025-10-16T13:00:58.919507',
  '2025-10-16T13:01:08.028083',
  '2025-10-16T13:01:18.526935',
];
const SCENES = ['8 market', '3 office', '12 café', '5 subway'];
const USER_ID = '99999999-9999-9999-9999-999999999999';
// Past, fixed mtimes: a sync right after generation must not meet "racily clean" files, and
// modified_* fields in manifests stay reproducible.
const MTIME_BASE_MS = Date.UTC(2025, 9, 16, 11, 0, 0);

/**
 * The studio-style name of actor `index`: `${id}_${ethnicity}_${age}_${sex}`.
 * @example actorName(0) // '0000_european_16_male'; actorName(2) // '0002_european_35_female'
 */
export function actorName(index: number): string {
  if (!Number.isInteger(index) || index < 0)
    throw new RangeError(`actorName: index must be an integer ≥ 0 (got ${index})`);
  const id = String(index).padStart(4, '0');
  const known = KNOWN_NAMES[index];
  if (known !== undefined) return `${id}_${known}`;
  const ethnicity = ETHNICITIES[Math.floor(index / 48) % ETHNICITIES.length];
  const age = AGES[(index * 5) % AGES.length];
  return `${id}_${ethnicity}_${age}_${index % 2 === 0 ? 'male' : 'female'}`;
}

/**
 * Creates a data root under `root` (which must be empty or not exist): per actor
 * `data/actors/<name>/training_data/<name>_<i>.png|.jpg`, for every `legacyEvery`-th actor a
 * `response.json` naming 12 of its images (a few also name one image that is not on disk), for some a
 * `prompt_metadata.json`, and `data/actor_manifests/<id>_manifest.json` for all but ~1 in 20 actors
 * (those with `index % 20 === 3`: 0003, 0023, …), without `training_data`.
 *
 * Each image is a tiny valid PNG portrait followed by seeded AES-CTR keystream up to its size, so the
 * demo page shows thumbnails, MD5s are all distinct (except actor 0000's deliberate duplicate), and
 * 1.6 GB takes seconds. Files get fixed past mtimes.
 * @example const { root, actors } = await generateDataRoot(tmp, { actors: 5 });
 */
export async function generateDataRoot(root: string, options: GenerateOptions = {}): Promise<GeneratedRoot> {
  const opts = resolveOptions(options);
  const absRoot = resolve(root);
  await assertEmptyOrAbsent(absRoot);
  const actorsDir = join(absRoot, 'data', 'actors');
  const manifestsDir = join(absRoot, 'data', 'actor_manifests');
  await mkdir(manifestsDir, { recursive: true });
  await mkdir(actorsDir, { recursive: true });

  const plans = Array.from({ length: opts.actors }, (_, index) =>
    index === 0 && opts.seedActor0000 ? planSeedActor(opts) : planActor(index, opts),
  );
  const zeros = Buffer.alloc(opts.maxBytes);
  let next = 0;
  // A few actors in flight keep the disk busy while the main thread fills the next buffers, and bound memory.
  const lane = async (): Promise<void> => {
    for (let plan = plans[next++]; plan !== undefined; plan = plans[next++]) {
      await writeActor(plan, actorsDir, manifestsDir, opts, zeros);
    }
  };
  await Promise.all(Array.from({ length: 4 }, lane));

  const actors = plans.map((p) => ({
    id: p.id,
    name: p.name,
    images: p.images.map((i) => i.filename),
    legacyUrls: p.legacyUrls,
    hasManifest: p.manifest !== undefined,
  }));
  const totalBytes = plans.reduce((sum, p) => sum + p.images.reduce((s, i) => s + i.size, 0), 0);
  const totalImages = plans.reduce((sum, p) => sum + p.images.length, 0);
  return { root: absRoot, actors, totalBytes, totalImages };
}

interface ImagePlan {
  filename: string;
  size: number;
  mtimeMs: number;
  /** Filename whose bytes this one repeats. */
  copyOf?: string;
}

interface ActorPlan {
  index: number;
  id: string;
  name: string;
  images: ImagePlan[];
  legacyUrls: string[];
  response?: object;
  promptMetadata?: object;
  manifest?: object;
}

function resolveOptions(options: GenerateOptions): Required<GenerateOptions> {
  const o: Required<GenerateOptions> = { ...DEFAULTS };
  for (const [key, value] of Object.entries(options) as [keyof GenerateOptions, unknown][]) {
    if (value !== undefined) (o as Record<string, unknown>)[key] = value;
  }
  const integer = (key: keyof GenerateOptions, min: number): void => {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new RangeError(`generateDataRoot: options.${key} must be an integer ≥ ${min} (got ${String(v)})`);
    }
  };
  integer('actors', 0);
  integer('imagesPerActor', 1);
  integer('minBytes', 1);
  integer('maxBytes', 1);
  integer('legacyEvery', 0);
  integer('seed', Number.MIN_SAFE_INTEGER);
  if (o.maxBytes < o.minBytes) {
    throw new RangeError(
      `generateDataRoot: options.maxBytes (${o.maxBytes}) must be ≥ options.minBytes (${o.minBytes})`,
    );
  }
  if (typeof o.bucketUrl !== 'string' || o.bucketUrl === '') {
    throw new TypeError('generateDataRoot: options.bucketUrl must be a non-empty string');
  }
  o.bucketUrl = o.bucketUrl.replace(/\/+$/, '');
  return o;
}

async function assertEmptyOrAbsent(root: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new Error(`generateDataRoot: ${root} is a file; pass an empty or missing directory`);
    }
    throw error;
  }
  if (entries.length > 0) {
    throw new Error(`generateDataRoot: ${root} is not empty (it holds ${entries.length} entries); nothing was written`);
  }
}

/** A small, fast PRNG (mulberry32) seeded per topic, so actor N is the same whatever `actors` is. */
function rngFor(...topic: (string | number)[]): () => number {
  let a = createHash('sha256').update(topic.join('\0')).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function intBetween(rng: () => number, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

function hexFrom(...topic: (string | number)[]): string {
  return createHash('md5').update(topic.join('\0')).digest('hex');
}

function uuidFrom(...topic: (string | number)[]): string {
  const h = hexFrom(...topic);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function mtimeOf(index: number, imageIndex: number): number {
  return MTIME_BASE_MS + index * 60_000 + imageIndex * 7_123;
}

function planActor(index: number, opts: Required<GenerateOptions>): ActorPlan {
  const name = actorName(index);
  const id = actorIdOf(name);
  const rng = rngFor('actor', opts.seed, index);
  const count = Math.max(1, opts.imagesPerActor + intBetween(rng, -2, 2));
  const styled = Math.min(count, intBetween(rng, 3, 5));
  const images: ImagePlan[] = Array.from({ length: count }, (_, i) => ({
    filename: `${name}_${i}.${i < count - styled ? 'png' : 'jpg'}`,
    size: intBetween(rng, opts.minBytes, opts.maxBytes),
    mtimeMs: mtimeOf(index, i),
  }));

  const plan: ActorPlan = { index, id, name, images, legacyUrls: [] };
  const legacy = opts.legacyEvery > 0 && index % opts.legacyEvery === 0;
  if (legacy) {
    const listed = shuffle(
      images.map((_, i) => i),
      rng,
    )
      .slice(0, 12)
      .sort((a, b) => a - b);
    const files = listed.map((i) => images[i]!.filename);
    // Every 4th legacy actor names one image that was uploaded and later deleted locally (s3_only).
    if ((index / opts.legacyEvery) % 4 === 1) files.push(`${name}_${count}.jpg`);
    plan.legacyUrls = files.map((f) => urlOf(opts, name, f));
    plan.response = responseJson(name, plan.legacyUrls, index % 2 === 0 ? 'actor_id' : 'character_id');
  }
  if (rng() < 0.4) {
    const urls = new Set(plan.legacyUrls);
    const entries = images.slice(count - styled).map((img, k) => {
      const i = count - styled + k;
      const url = urlOf(opts, name, img.filename);
      return [
        img.filename,
        {
          prompt: STYLES[intBetween(rng, 0, STYLES.length - 1)]!.replace('{who}', whoOf(name)),
          generated_at: new Date(img.mtimeMs - 3_600_000).toISOString().replace('Z', '000'),
          ...(urls.has(url) ? { s3_url: url } : {}),
          index: i,
          good: rng() < 0.8,
        },
      ] as const;
    });
    plan.promptMetadata = promptMetadataJson(entries);
  }
  if (index % 20 !== 3) plan.manifest = manifestJson(index, name, opts, rng);
  return plan;
}

/** Actor 0000 as the seed describes it, with the fixture's own legacy files when `bucketUrl` is the default. */
function planSeedActor(opts: Required<GenerateOptions>): ActorPlan {
  const rng = rngFor('actor', opts.seed, 0);
  const images: ImagePlan[] = SEED_LOCAL.filter((f) => f !== DUPLICATE.copy).map((filename) => ({
    filename,
    size: intBetween(rng, opts.minBytes, opts.maxBytes),
    mtimeMs: mtimeOf(0, Number(/_(\d+)\./.exec(filename)![1])),
  }));
  const original = images.find((i) => i.filename === DUPLICATE.of)!;
  // The copy came later (a re-export under the other extension), so its mtime is a little newer.
  images.push({
    filename: DUPLICATE.copy,
    size: original.size,
    mtimeMs: original.mtimeMs + 1_000,
    copyOf: DUPLICATE.of,
  });
  images.sort((a, b) => naturalKey(a.filename) - naturalKey(b.filename));

  const legacyUrls = SEED_LISTED.map((f) => urlOf(opts, SEED_NAME, f));
  const response = {
    delayTime: 1166,
    executionTime: 346732,
    id: 'f591d29d-b9af-4d4d-b9c7-8d5c17ea539b-e1',
    output: {
      output: {
        actor_id: SEED_NAME,
        job_id: '0e478329-9504-492f-a19b-c387dd969193',
        s3_image_urls: legacyUrls,
        type: 'system',
        user_id: USER_ID,
      },
      status: 'success',
    },
    status: 'COMPLETED',
    workerId: 'g1xn0ll80orqhc',
  };
  const promptMetadata = promptMetadataJson(
    [14, 15, 16, 17].map((i, k) => {
      const filename = `${SEED_NAME}_${i}.jpg`;
      return [
        filename,
        {
          prompt: STYLES[k]!.replace('{who}', 'man'),
          generated_at: SEED_GENERATED_AT[k]!,
          s3_url: urlOf(opts, SEED_NAME, filename),
          index: i,
        },
      ] as const;
    }),
  );
  return {
    index: 0,
    id: '0000',
    name: SEED_NAME,
    images,
    legacyUrls,
    response,
    promptMetadata,
    manifest: manifestJson(0, SEED_NAME, opts, rng),
  };
}

function naturalKey(filename: string): number {
  const m = /_(\d+)\.(\w+)$/.exec(filename)!;
  return Number(m[1]) * 2 + (m[2] === 'jpg' ? 0 : 1);
}

function shuffle<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function urlOf(opts: Required<GenerateOptions>, name: string, filename: string): string {
  return `${opts.bucketUrl}/${encodeURIComponent(name)}/${encodeURIComponent(filename)}`;
}

function whoOf(name: string): string {
  return name.endsWith('_female') ? 'woman' : 'man';
}

/** The shape of the fixture's response.json; the id key varies as it does across the studio's files. */
function responseJson(name: string, urls: string[], idKey: 'actor_id' | 'character_id'): object {
  const rng = rngFor('response', name);
  return {
    delayTime: intBetween(rng, 100, 2000),
    executionTime: intBetween(rng, 300_000, 500_000),
    id: `${uuidFrom('job', name)}-e1`,
    output: {
      output: {
        [idKey]: name,
        job_id: uuidFrom('job_id', name),
        s3_image_urls: urls,
        ...(idKey === 'actor_id' ? { type: 'system' } : {}),
        user_id: USER_ID,
      },
      status: 'success',
    },
    status: 'COMPLETED',
    workerId: hexFrom('worker', name).slice(0, 14),
  };
}

function promptMetadataJson(
  entries: readonly (readonly [string, { prompt: string } & Record<string, unknown>])[],
): object {
  const images: Record<string, unknown> = {};
  for (const [filename, { prompt, ...rest }] of entries) {
    const preview = prompt.length > 100 ? `${prompt.slice(0, 100)}...` : prompt;
    const { generated_at, ...tail } = rest;
    images[filename] = { prompt, prompt_preview: preview, generated_at, ...tail };
  }
  return { images };
}

/** A manifest before this tool ever touched it: the fixture's fields, in the fixture's order. */
function manifestJson(index: number, name: string, opts: Required<GenerateOptions>, rng: () => number): object {
  const id = actorIdOf(name);
  if (!opts.richManifests) return { character_id: id, character_name: name };
  const [, ethnicity = '', age = '', sex = ''] = name.split('_');
  const studio = '/Users/studio/projects/storyboards_ai';
  const fileEntry = (
    relative: string,
    moved: string,
    createdMs: number,
    extra: object = {},
  ): Record<string, unknown> => {
    const size = intBetween(rng, 900_000, 2_100_000);
    const modifiedMs = createdMs + intBetween(rng, 0, 20_000_000);
    return {
      path: `${studio}/wm-characters/${relative}`,
      relative_path: relative,
      size_bytes: size,
      size_mb: Math.round((size / 1_048_576) * 100) / 100,
      created_timestamp: createdMs / 1000 + 0.0001234,
      created_date: new Date(createdMs).toISOString().replace('Z', '000'),
      modified_timestamp: modifiedMs / 1000 + 0.0005678,
      modified_date: new Date(modifiedMs).toISOString().replace('Z', '000'),
      md5_hash: hexFrom('manifest', opts.seed, relative),
      moved_to: `${studio}/actor_maker/${moved}`,
      moved_relative_path: moved,
      ...extra,
    };
  };
  const baseRel = `characters/${name}/base_image/${name}_base.png`;
  const base = fileEntry(
    baseRel,
    `data/actors/${name}/base_image/${name}_base.png`,
    Date.UTC(2025, 4, 10) + index * 61_000,
  );
  const scenes = Array.from({ length: index === 0 ? 3 : intBetween(rng, 0, 3) }, (_, k) => {
    const scene = SCENES[(index + k) % SCENES.length]!;
    const rel = `images/${scene}/${sex}/Image${String(index * 7 + k).padStart(4, '0')}.png`;
    return fileEntry(rel, `data/scenes/${scene}/${sex}/${rel.split('/').pop()!}`, Date.UTC(2024, 11, 15) + k * 1000, {
      scene_name: scene,
    });
  });
  const all = [base, ...scenes];
  const totalSize = all.reduce((s, e) => s + (e.size_bytes as number), 0);
  const metadata =
    index === 0
      ? {
          img: `${name}.webp`,
          age: '16',
          sex: 'male',
          ethnicity: 'european',
          face_prompt:
            '16 year old young man, Peter Savonis with european complexion, with very short curly brown hair',
          id,
          name,
          image: 'image1',
          outfit: OUTFITS[0],
        }
      : {
          img: `${name}.webp`,
          age,
          sex,
          ethnicity,
          face_prompt: `${age} year old ${ethnicity} ${whoOf(name)}, with ${['short', 'long', 'curly', 'straight'][index % 4]} ${['brown', 'black', 'red', 'blond'][Math.floor(index / 4) % 4]} hair`,
          id,
          name,
          image: `image${index + 1}`,
          outfit: OUTFITS[index % OUTFITS.length],
        };
  return {
    character_id: id,
    character_name: name,
    metadata,
    migration_timestamp: new Date(Date.UTC(2025, 9, 15, 7, 38, 27) + index * 1327).toISOString().replace('Z', '466'),
    base_images: [base],
    scene_images: scenes,
    statistics: {
      total_files: all.length,
      total_size_bytes: totalSize,
      total_size_mb: Math.round((totalSize / 1_048_576) * 100) / 100,
      base_images_count: 1,
      scene_images_count: scenes.length,
    },
    status: 'success',
  };
}

async function writeActor(
  plan: ActorPlan,
  actorsDir: string,
  manifestsDir: string,
  opts: Required<GenerateOptions>,
  zeros: Buffer,
): Promise<void> {
  const dir = join(actorsDir, plan.name, 'training_data');
  await mkdir(dir, { recursive: true });
  const bytes = new Map<string, Buffer>();
  for (const img of plan.images)
    if (img.copyOf === undefined) bytes.set(img.filename, imageBytes(opts.seed, plan, img, zeros));
  for (const img of plan.images) if (img.copyOf !== undefined) bytes.set(img.filename, bytes.get(img.copyOf)!);
  const writes = plan.images.map(async (img) => {
    const file = join(dir, img.filename);
    await writeFile(file, bytes.get(img.filename)!);
    await utimes(file, img.mtimeMs / 1000, img.mtimeMs / 1000);
  });
  // The studio's Python wrote these with json.dump: 2-space indent, no final newline.
  if (plan.response) writes.push(writeFile(join(dir, 'response.json'), JSON.stringify(plan.response, null, 2)));
  if (plan.promptMetadata) {
    writes.push(writeFile(join(dir, 'prompt_metadata.json'), JSON.stringify(plan.promptMetadata, null, 2)));
  }
  if (plan.manifest) {
    writes.push(
      writeFile(join(manifestsDir, `${plan.id}_manifest.json`), `${JSON.stringify(plan.manifest, null, 2)}\n`),
    );
  }
  await Promise.all(writes);
}

/** A portrait PNG, then AES-128-CTR keystream (keyed by seed and filename) to exactly `size` bytes. */
function imageBytes(seed: number, plan: ActorPlan, img: ImagePlan, zeros: Buffer): Buffer {
  const digest = createHash('sha256').update(`actor-sync demo image\0${seed}\0${plan.name}\0${img.filename}`).digest();
  const out = createCipheriv('aes-128-ctr', digest.subarray(0, 16), digest.subarray(16, 32)).update(
    zeros.subarray(0, img.size),
  );
  const png = portraitPng(seed, plan, img.filename);
  // Viewers stop at IEND, so the random tail only makes the file big and its MD5 unique.
  if (png.length <= out.length) png.copy(out, 0);
  return out;
}

const PNG_W = 32;
const PNG_H = 40;

/**
 * A 32×40 4-bit palette portrait (background per image, skin/hair/shirt per actor). The deflate stream is
 * hand-made "stored" blocks so the bytes never depend on the zlib version Node ships.
 */
function portraitPng(seed: number, plan: ActorPlan, filename: string): Buffer {
  const actor = rngFor('portrait', seed, plan.name);
  const image = rngFor('portrait', seed, filename);
  const skins = [
    [241, 204, 177],
    [224, 172, 135],
    [198, 134, 96],
    [141, 85, 54],
    [92, 58, 38],
  ];
  const hairs = [
    [59, 38, 24],
    [20, 18, 20],
    [201, 165, 96],
    [150, 60, 30],
    [170, 170, 170],
  ];
  const ethnicity = ETHNICITIES.indexOf(plan.name.split('_')[1] ?? '');
  const skin = skins[ethnicity <= 0 ? intBetween(actor, 0, 1) : intBetween(actor, 1, skins.length - 1)]!;
  const hair = hairs[Number(plan.name.split('_')[2]) >= 55 ? 4 : intBetween(actor, 0, 3)]!;
  const sky = [intBetween(image, 60, 230), intBetween(image, 60, 230), intBetween(image, 60, 230)];
  const shirt = [intBetween(actor, 30, 220), intBetween(actor, 30, 220), intBetween(actor, 30, 220)];
  const palette = [sky, sky.map((c) => Math.round(c * 0.75)), skin, hair, shirt, [30, 30, 40]];
  const raw = Buffer.alloc(PNG_H * (1 + PNG_W / 2));
  for (let y = 0; y < PNG_H; y++) {
    const row = y * (1 + PNG_W / 2);
    for (let x = 0; x < PNG_W; x++) {
      const head = (x - 15.5) ** 2 + (y - 16) ** 2 <= 64;
      const hair = (x - 15.5) ** 2 + (y - 14) ** 2 <= 81 && y < 13;
      const body = ((x - 15.5) / 14) ** 2 + ((y - 42) / 14) ** 2 <= 1;
      const eye = y === 16 && (x === 12 || x === 19);
      const color = eye ? 5 : hair ? 3 : head ? 2 : body ? 4 : y < PNG_H / 2 ? 0 : 1;
      raw[row + 1 + (x >> 1)]! |= x % 2 === 0 ? color << 4 : color;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(PNG_W, 0);
  ihdr.writeUInt32BE(PNG_H, 4);
  ihdr.set([4, 3, 0, 0, 0], 8);
  const stored = Buffer.alloc(5);
  stored.writeUInt8(1, 0);
  stored.writeUInt16LE(raw.length, 1);
  stored.writeUInt16LE(~raw.length & 0xffff, 3);
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE(adler32(raw), 0);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('PLTE', Buffer.from(palette.flat())),
    pngChunk('IDAT', Buffer.concat([Buffer.from([0x78, 0x01]), stored, raw, adler])),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** One PNG chunk (length, type, data, CRC): the demo's images and the tests' thumbnails are built from these. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}
