/**
 * `serve` as the backend of the studio's own UI (story-boards-ai/actor_maker, SPEC §6), at the seed's commit
 * `ecf644f` and at the newest one, `4f0f8b4`: a root built from that commit's real JSON files (its
 * `data/actorsData.json`, first 7 entries, its manifests, response.json and prompt_metadata.json), served
 * over real HTTP, and every read its UI code makes of `GET /api/actors` and `GET /api/actors/:id/training-data`
 * checked field by field, with the type the reading code needs (`.filter` a list, `.toFixed` a number,
 * `.trim` a string, an `<img src>` a path this server answers with the image).
 *
 * The reads, taken from `ui/src` at each commit (file:line at that commit):
 * - the list: ActorsGrid.tsx (ecf644f:79 `setActors(json)` then `.filter`/`.map`/`.length`; `actor.id`,
 *   `.name`, `.url`, `.face_prompt`, `.good`; 4f0f8b4:199-222 `training_data_good`, `custom_models_count`,
 *   `custom_models_good`, `production_synced`), ActorCard.tsx (`good`, `poster_frames?.…webp_md`),
 *   ActorSelectorModal.tsx:27-131 (`name.toLowerCase()`, `description?.`, `id.toString()`, `sex`,
 *   `ethnicity`, `age`, `poster_frames.standard.webp_sm`, `training_data.count`), ActorTrainingTab.tsx:56-126
 *   (`a.id.toString()`, `training_data?.count`, `training_data.synced` enabling "Start Training"),
 *   CharacterSelectionModal.tsx (`id.toString()`, `url`, `poster_frames?.accelerated?.webp_sm`; 4f0f8b4:49-50
 *   `lora_model.filename`, `custom_lora_models.length`, 105 `lora_model?.s3_accelerated_url`);
 * - the document: ActorTrainingDataManager.tsx (ecf644f:81 `base_image_path` as `<img src>`, 554-615
 *   `index`, `filename`, `s3_url`, `local_exists`, `local_path` as `<img src>`, `status`; 4f0f8b4:170-176
 *   `base_image_url`, `training_images`, `training_data_good`), TrainingImageModal.tsx (ecf644f:559-599 the
 *   same image fields; 4f0f8b4:651 `size_mb.toFixed(2)`, 653-655 `new Date(modified_date)`),
 *   trainingDataUtils.ts (`total_count`, `training_images[].filename`; ecf644f:56 `base_image_path.trim()`,
 *   4f0f8b4:56 `has_base_image === true`), useTrainingOperations.ts:185-187 (`training_images.map(img =>
 *   img.s3_url.startsWith(…))`, reached only when the list says `training_data.synced`), prefetchManager.ts
 *   (4f0f8b4:183-200 `training_images[].s3_url`, `base_image_url`).
 */
import { cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSync } from '../../src/engine/sync.js';
import { tempRoot, trainingDir } from '../helpers/root.js';
import { pngImage, serve, type TestServer } from '../helpers/server.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

type Kind = 'string' | 'number' | 'boolean' | 'array' | 'object' | 'null' | 'undefined';

function kindOf(value: unknown): Kind {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value as Kind;
}

/** The value at `path` (`a.b.c`) has one of `kinds`: what the reading code needs to not throw or misread. */
function expectRead(where: string, object: unknown, path: string, kinds: Kind[]): unknown {
  let value: unknown = object;
  for (const key of path.split('.')) value = value == null ? undefined : (value as Record<string, unknown>)[key];
  expect(kinds, `${where}: ${path} is ${kindOf(value)} (${JSON.stringify(value)?.slice(0, 80)})`).toContain(
    kindOf(value),
  );
  return value;
}

/** An `<img src>` of the UI: this server answers it with the image file itself. */
async function expectImage(server: TestServer, src: string, bytes?: Buffer): Promise<void> {
  expect(src).toMatch(/^\/data\/actors\//);
  const response = await fetch(server.url + src);
  expect(response.status, src).toBe(200);
  expect(response.headers.get('content-type'), src).toMatch(/^image\//);
  const body = Buffer.from(await response.arrayBuffer());
  if (bytes) expect(body.equals(bytes), src).toBe(true);
}

interface StudioRoot {
  root: string;
  /** actorsData.json as the commit has it (its first 7 entries). */
  studio: Record<string, any>[];
  /** The actors given a folder here, by name. */
  folders: string[];
  /** The actor all of whose images are made local, so that every one is synced. */
  allLocal: string;
}

/** Writes every image `name`'s training data lists (as served now) as a local file: each is then synced. */
async function makeAllLocal(server: TestServer, root: string, name: string): Promise<void> {
  const data = (await (await fetch(`${server.url}/api/actors/${name}/training-data`)).json()) as {
    total_count: number;
    training_images: { filename: string; index: number }[];
  };
  expect(data.total_count).toBeGreaterThan(0);
  for (const image of data.training_images)
    await writeFile(join(trainingDir(root, name), image.filename), pngImage(image.index));
}

async function rootAt(commit: 'ecf644f' | '4f0f8b4'): Promise<StudioRoot> {
  const root = await tempRoot();
  // The seed's commit: the sample (its manifests and legacy files, as ecf644f has them); the newest: its own.
  if (commit === 'ecf644f')
    await cp(join(FIXTURES, 'actor_maker-sample', 'data'), join(root, 'data'), { recursive: true });
  await cp(join(FIXTURES, 'actor_maker-ui', commit, 'data'), join(root, 'data'), { recursive: true });
  const studio = JSON.parse(await readFile(join(root, 'data', 'actorsData.json'), 'utf8'));
  const folders =
    commit === 'ecf644f'
      ? ['0000_european_16_male', '0001_european_20_female', '0004_european_35_male']
      : ['0001_european_20_female', '0004_european_35_male', '0005_european_50_female', '0006_european_20_female'];
  for (const name of folders) await mkdir(trainingDir(root, name), { recursive: true });
  const actor = (name: string) => join(root, 'data', 'actors', name);
  if (commit === 'ecf644f') {
    // Where the studio keeps them: 0000's base image (in its repository at ecf644f), a poster frame for 0001.
    await mkdir(join(actor('0000_european_16_male'), 'base_image'));
    await writeFile(
      join(actor('0000_european_16_male'), 'base_image', '0000_european_16_male_base.png'),
      pngImage(100),
    );
    await mkdir(join(actor('0001_european_20_female'), 'poster_frame'), { recursive: true });
    await writeFile(
      join(actor('0001_european_20_female'), 'poster_frame', '0001_european_20_female_poster.jpg'),
      pngImage(101),
    );
    // One image of a response.json on this machine too, and a new one only here.
    await writeFile(join(trainingDir(root, '0000_european_16_male'), '0000_european_16_male_4.png'), pngImage(4));
    await writeFile(join(trainingDir(root, '0000_european_16_male'), '0000_european_16_male_new.png'), pngImage(5));
  } else {
    await mkdir(join(actor('0006_european_20_female'), 'poster_frame'));
    await writeFile(
      join(actor('0006_european_20_female'), 'poster_frame', '0006_european_20_female.png'),
      pngImage(102),
    );
    await writeFile(join(trainingDir(root, '0006_european_20_female'), '0006_european_20_female_new.png'), pngImage(6));
  }
  return { root, studio, folders, allLocal: '0004_european_35_male' };
}

/** The list as each component reads it. */
function checkListReads(
  commit: string,
  list: unknown,
  studio: Record<string, any>[],
  folders: string[],
): Record<string, any>[] {
  // ActorsGrid / ActorTrainingTab / CharacterSelectionModal: `setActors(await response.json())`, then `.filter`, `.map`, `.find`.
  expect(kindOf(list), 'the list is a bare array').toBe('array');
  const actors = list as Record<string, any>[];
  expect(
    actors.map((a) => a.name),
    "actorsData.json's order, every entry",
  ).toEqual(studio.map((a) => a.name));
  for (const [i, actor] of actors.entries()) {
    const where = `${commit} /api/actors[${i}] ${actor.name}`;
    // Every field of the studio's entry, kept as is.
    expect(actor, where).toMatchObject(studio[i]!);
    expectRead(where, actor, 'id', ['number']); // .toString(), `/api/actors/${actor.id}/training-data`
    expectRead(where, actor, 'name', ['string']); // .toLowerCase()
    for (const field of ['description', 'sex', 'ethnicity', 'age', 'url', 'face_prompt'])
      expectRead(where, actor, field, ['string']);
    expectRead(where, actor, 'good', ['boolean', 'undefined']);
    expectRead(where, actor, 'poster_frames.standard.webp_sm', ['string']); // ActorSelectorModal, ActorTrainingTab: no `?.`
    expectRead(where, actor, 'poster_frames.accelerated.webp_sm', ['string']);
    expectRead(where, actor, 'poster_frames.accelerated.webp_md', ['string']);
    const hasFolder = folders.includes(actor.name);
    // ActorTrainingTab: `training_data?.count || 0`, `!training_data?.synced` disables "Start Training".
    expectRead(where, actor, 'training_data', hasFolder ? ['object'] : ['undefined']);
    if (!hasFolder) continue;
    expect(Object.keys(actor.training_data), where).toEqual(['count', 'synced']);
    expectRead(where, actor, 'training_data.count', ['number']);
    expectRead(where, actor, 'training_data.synced', ['boolean']);
    // The newest ActorsGrid and ActorCard's badges and filters.
    expectRead(where, actor, 'training_data_good', ['boolean']);
    expectRead(where, actor, 'custom_models_count', ['number']);
    expectRead(where, actor, 'custom_models_good', ['boolean']);
    expectRead(where, actor, 'production_synced', ['boolean']);
    // The newest CharacterSelectionModal: `lora_model.filename`, `custom_lora_models.length`.
    expectRead(where, actor, 'lora_model', ['object', 'undefined']);
    expectRead(where, actor, 'custom_lora_models', ['array', 'undefined']);
    // Ours, beside them.
    expect(actor, where).toMatchObject({ actor_name: actor.name, error: null });
  }
  return actors;
}

/** The training-data document as each component reads it; returns it. */
async function checkDocumentReads(
  commit: string,
  server: TestServer,
  root: string,
  actor: Record<string, any>,
): Promise<Record<string, any>> {
  const where = `${commit} training-data of ${actor.name}`;
  // `/api/actors/${actor.id}/training-data`, with the number from the list.
  const response = await fetch(`${server.url}/api/actors/${actor.id}/training-data`);
  expect(response.status, where).toBe(200);
  const data = (await response.json()) as Record<string, any>;
  const images = expectRead(where, data, 'training_images', ['array']) as Record<string, any>[];
  expect(expectRead(where, data, 'total_count', ['number']), where).toBe(images.length);
  const basePath = expectRead(where, data, 'base_image_path', ['string', 'null']); // ecf644f: `.trim()`, `<img src>`
  if (typeof basePath === 'string') await expectImage(server, basePath);
  expectRead(where, data, 'base_image_url', ['string', 'null']);
  expect(expectRead(where, data, 'has_base_image', ['boolean']), where).toBe(true); // every actor here has one
  expectRead(where, data, 'training_data_good', ['boolean']);
  for (const [i, image] of images.entries()) {
    const at = `${where}, image ${i} ${image.filename}`;
    expect(expectRead(at, image, 'index', ['number'])).toBe(i);
    expectRead(at, image, 'filename', ['string']);
    expectRead(at, image, 's3_url', ['string', 'null']);
    const local = expectRead(at, image, 'local_exists', ['boolean']);
    const localPath = expectRead(at, image, 'local_path', local ? ['string'] : ['null']);
    if (typeof localPath === 'string')
      await expectImage(server, localPath, await readFile(join(trainingDir(root, actor.name), image.filename)));
    // The statuses the studio's handler answers (the UI colours any other one red).
    expect(['synced', 's3_only', 'local_only', 'out_of_sync'], at).toContain(image.status);
    expect((expectRead(at, image, 'size_mb', ['number']) as number).toFixed(2), at).toMatch(/^\d+\.\d\d$/);
    const modified = expectRead(at, image, 'modified_date', ['string', 'null']);
    if (typeof modified === 'string') expect(Number.isNaN(new Date(modified).getTime()), at).toBe(false);
    expectRead(at, image, 'good', ['boolean']);
  }
  // useTrainingOperations runs only once the list says synced; then every URL is a string it converts.
  if (actor.training_data.synced)
    expect(
      images.every((image) => typeof image.s3_url === 'string' && image.s3_url.startsWith('https://')),
      where,
    ).toBe(true);
  return data;
}

describe("the studio's UI reads, against serve", () => {
  it('at the seed commit ecf644f: the list, every document, and the images they point at', async () => {
    const { root, studio, folders, allLocal } = await rootAt('ecf644f');
    const server = await serve(root);
    await makeAllLocal(server, root, allLocal);
    const actors = checkListReads('ecf644f', await (await fetch(`${server.url}/api/actors`)).json(), studio, folders);
    const documents = new Map<string, Record<string, any>>();
    for (const actor of actors.filter((a) => folders.includes(a.name)))
      documents.set(actor.name, await checkDocumentReads('ecf644f', server, root, actor));

    // "Start Training" is enabled for the actor whose every image is synced, and only for it.
    expect(actors.filter((a) => a.training_data?.synced).map((a) => a.name)).toEqual([allLocal]);
    expect(actors.find((a) => a.name === allLocal)!.training_data).toEqual({ count: 15, synced: true });
    const seed = documents.get('0000_european_16_male')!;
    expect(seed.base_image_path).toBe('/data/actors/0000_european_16_male/base_image/0000_european_16_male_base.png');
    expect(
      seed.training_images.find((i: { filename: string }) => i.filename === '0000_european_16_male_new.png'),
    ).toMatchObject({ status: 'local_only', local_exists: true, s3_url: null });
    expect(
      seed.training_images.find((i: { filename: string }) => i.filename === '0000_european_16_male_4.png'),
    ).toMatchObject({
      status: 'synced',
      local_path: '/data/actors/0000_european_16_male/training_data/0000_european_16_male_4.png',
    });
    // The studio's poster-frame fallback.
    expect(documents.get('0001_european_20_female')!.base_image_path).toBe(
      '/data/actors/0001_european_20_female/poster_frame/0001_european_20_female_poster.jpg',
    );
  });

  it('at the newest commit 4f0f8b4: the same, and the fields its handlers add from the manifest', async () => {
    const { root, studio, folders, allLocal } = await rootAt('4f0f8b4');
    const server = await serve(root);
    await makeAllLocal(server, root, allLocal);
    const actors = checkListReads('4f0f8b4', await (await fetch(`${server.url}/api/actors`)).json(), studio, folders);
    const manifestOf = async (id: number) =>
      JSON.parse(
        await readFile(join(root, 'data', 'actor_manifests', `${String(id).padStart(4, '0')}_manifest.json`), 'utf8'),
      );

    for (const actor of actors.filter((a) => folders.includes(a.name))) {
      const data = await checkDocumentReads('4f0f8b4', server, root, actor);
      const manifest = await manifestOf(actor.id);
      // As the studio's handlers answer them, from the manifest.
      expect(actor.training_data_good, actor.name).toBe(manifest.training_data_good === true);
      expect(actor.lora_model, actor.name).toEqual(manifest.lora_model);
      expect(actor.custom_lora_models, actor.name).toEqual(manifest.custom_lora_models);
      expect(actor.custom_models_count, actor.name).toBe((manifest.custom_lora_models ?? []).length);
      expect(data.training_data_good, actor.name).toBe(manifest.training_data_good === true);
      expect(data.base_image_url, actor.name).toBe(manifest.base_images[0].s3_url);
      // An image not on this machine: the size the manifest records (the modal's `size_mb.toFixed(2)`).
      for (const image of data.training_images.filter(
        (i: { status: string; tracked: boolean }) => i.status === 's3_only' && i.tracked,
      )) {
        expect(image.size_mb, `${actor.name} ${image.filename}`).toBe(
          manifest.training_data.find((e: { filename: string }) => e.filename === image.filename).size_mb,
        );
      }
    }
    // The newest CharacterSelectionModal lists the actors with a LoRA model: those the studio's handler gives one.
    const withModels = actors
      .filter((a) => a.lora_model?.filename || (a.custom_lora_models && a.custom_lora_models.length > 0))
      .map((a) => a.name);
    expect(withModels).toEqual(folders);
    expect(actors.filter((a) => a.training_data_good === true).map((a) => a.name)).toEqual([
      '0005_european_50_female',
      '0006_european_20_female',
    ]);
    expect(actors.filter((a) => a.training_data?.synced).map((a) => a.name)).toEqual([allLocal]);
  });

  it("after sync retires response.json, the list still says synced (the studio's own handler would not)", async () => {
    const { root, allLocal } = await rootAt('ecf644f');
    const server = await serve(root);
    await makeAllLocal(server, root, allLocal);
    const report = await runSync({ root, workers: 2 });
    expect(report.actors.find((a) => a.name === allLocal)!.errors).toEqual([]);
    // The studio's handler: `synced: fs.existsSync(training_data/response.json)`.
    await expect(stat(join(trainingDir(root, allLocal), 'response.json'))).rejects.toThrow(/ENOENT/);
    const list = (await (await fetch(`${server.url}/api/actors`)).json()) as { name: string; training_data: unknown }[];
    expect(list.find((a) => a.name === allLocal)!.training_data).toEqual({ count: 15, synced: true });
  });
});
