/** Scenario fixtures: data roots built in temp dirs, and the seed's actor 0000 example by name. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach } from 'vitest';

const made: string[] = [];

/** A fresh empty data root (removed after the test) with `data/actors` and `data/actor_manifests`. */
export async function tempRoot(): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'actor-sync-test-'));
  made.push(root);
  await mkdir(join(root, 'data', 'actors'), { recursive: true });
  await mkdir(join(root, 'data', 'actor_manifests'), { recursive: true });
  return root;
}

afterEach(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

export const SEED_NAME = '0000_european_16_male';
export const SEED_BASE = 'https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data';
export const SEED_LISTED = [
  ...[4, 6, 8, 9, 10, 11, 12, 13].map((i) => `${SEED_NAME}_${i}.png`),
  ...[14, 15, 16, 17].map((i) => `${SEED_NAME}_${i}.jpg`),
];
export const SEED_URLS = SEED_LISTED.map((f) => `${SEED_BASE}/${SEED_NAME}/${f}`);

export function trainingDir(root: string, name: string): string {
  return join(root, 'data', 'actors', name, 'training_data');
}

export function manifestPath(root: string, id: string): string {
  return join(root, 'data', 'actor_manifests', `${id}_manifest.json`);
}

export function md5(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** Writes images (random bytes unless given) into an actor's training_data; returns their MD5s. */
export async function addImages(
  root: string,
  name: string,
  files: Record<string, Buffer | number>,
): Promise<Record<string, string>> {
  const dir = trainingDir(root, name);
  await mkdir(dir, { recursive: true });
  const hashes: Record<string, string> = {};
  for (const [file, content] of Object.entries(files)) {
    const bytes = typeof content === 'number' ? randomBytes(content) : content;
    await writeFile(join(dir, file), bytes);
    hashes[file] = md5(bytes);
  }
  return hashes;
}

export async function writeResponseJson(root: string, name: string, urls: unknown): Promise<string> {
  const path = join(trainingDir(root, name), 'response.json');
  await mkdir(trainingDir(root, name), { recursive: true });
  await writeFile(
    path,
    JSON.stringify(
      {
        delayTime: 1,
        output: { output: { actor_id: name, s3_image_urls: urls, type: 'system' }, status: 'success' },
        status: 'COMPLETED',
      },
      null,
      2,
    ),
  );
  return path;
}

export async function writeManifest(root: string, id: string, manifest: unknown): Promise<string> {
  const path = manifestPath(root, id);
  await writeFile(path, JSON.stringify(manifest, null, 2));
  return path;
}

/** The seed's example: 12 URLs in response.json, 17 local files (the 12, `_0`–`_3`, and `_4.jpg` = `_4.png`). */
export async function seedActor0000(
  root: string,
): Promise<{ hashes: Record<string, string>; manifest: string; response: string }> {
  const files: Record<string, Buffer | number> = {};
  for (const f of [...SEED_LISTED, ...[0, 1, 2, 3].map((i) => `${SEED_NAME}_${i}.png`)]) files[f] = 50_000;
  const hashes = await addImages(root, SEED_NAME, files);
  const png4 = await readFile(join(trainingDir(root, SEED_NAME), `${SEED_NAME}_4.png`));
  Object.assign(hashes, await addImages(root, SEED_NAME, { [`${SEED_NAME}_4.jpg`]: png4 }));
  const response = await writeResponseJson(root, SEED_NAME, SEED_URLS);
  const manifest = await writeManifest(root, '0000', {
    character_id: '0000',
    character_name: SEED_NAME,
    metadata: { age: '16' },
    statistics: { total_files: 3 },
  });
  return { hashes, manifest, response };
}

/**
 * Every file under `dir` with its bytes and mtime: compare two snapshots to prove nothing changed. With
 * `folders`, every folder (`dir` too) with its mtime as well: a folder's mtime moves when an entry is made
 * or removed in it, so even something made and removed again (a lock, a temp file) leaves a trace. (A
 * writing run's lock always does, so only a run that must write nothing is compared with them.)
 */
export async function snapshot(dir: string, options: { folders?: boolean } = {}): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  async function walk(current: string): Promise<void> {
    if (options.folders)
      result.set(`${relative(dir, current) || '.'}/`, `folder ${(await stat(current, { bigint: true })).mtimeNs}`);
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) {
        const stats = await stat(path, { bigint: true });
        result.set(relative(dir, path), `${md5(await readFile(path))} ${stats.mtimeNs}`);
      } else result.set(relative(dir, path), entry.isSymbolicLink() ? 'symlink' : 'special');
    }
  }
  await walk(dir);
  return result;
}

/**
 * What a run (pid 4242) killed mid-commit of `dir/<targetName>` leaves: its temp file, named as SPEC §3
 * says (`.actor-sync-<pid>-<random hex>.<target>.tmp`), half written, a minute old (the next run's lock is
 * younger). Returns its path.
 */
export async function leaveStaleTemp(dir: string, targetName: string): Promise<string> {
  const path = join(dir, `.actor-sync-4242-${randomBytes(6).toString('hex')}.${targetName}.tmp`);
  await writeFile(path, '{"half": "written');
  const minuteAgo = new Date(Date.now() - 60_000);
  await utimes(path, minuteAgo, minuteAgo);
  return path;
}

export async function readJson(path: string): Promise<any> {
  return JSON.parse(await readFile(path, 'utf8'));
}
