/**
 * `GET /thumbnails/:actorId/:filename` and the studio's `GET /data/actors/:actor/:folder/:filename`: only
 * image files inside the actor's own `training_data` (or `base_image`, `poster_frame`) are ever served. Traversal attempts (`..`, encoded slashes and backslashes, NUL), symlinks leading elsewhere,
 * non-image files, folders and FIFOs named like images all get 400/404 and never a byte of content.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorBodySchema } from '../../src/server/schema.js';
import { addImages, manifestPath, SEED_NAME, seedActor0000, tempRoot, trainingDir } from '../helpers/root.js';
import { pngImage, rawRequest, serve, type TestServer } from '../helpers/server.js';

const SECRET = 'TOP-SECRET-CONTENT';

/** A seed root with real pictures, a secret outside the root and one beside the actor, and hostile names. */
async function hostileRoot(): Promise<{ root: string; server: TestServer; dir: string }> {
  const root = await tempRoot();
  await seedActor0000(root);
  const dir = trainingDir(root, SEED_NAME);
  await writeFile(join(dir, `${SEED_NAME}_0.png`), pngImage(0));

  const outside = join(await tempRoot(), 'outside.png'); // another temp folder: outside this data root
  await writeFile(outside, SECRET);
  await symlink(outside, join(dir, 'out-of-root.png'));
  await writeFile(join(root, 'secret.png'), SECRET);
  await symlink(join(root, 'secret.png'), join(dir, 'in-root-elsewhere.png'));
  await addImages(root, '0001_other', { 'other.png': Buffer.from(SECRET) });
  await symlink(join(trainingDir(root, '0001_other'), 'other.png'), join(dir, 'other-actor.png'));
  await writeFile(join(dir, 'notes.txt'), SECRET);
  await symlink(join(dir, 'notes.txt'), join(dir, 'notes-link.png'));
  await symlink(join(dir, 'response.json'), join(dir, 'response-link.png'));
  await writeFile(join(dir, '.hidden.png'), SECRET);
  await mkdir(join(dir, 'folder.png'));
  execFileSync('mkfifo', [join(dir, 'fifo.png')]);
  await symlink(join(dir, 'nowhere.png'), join(dir, 'broken.png'));
  const server = await serve(root);
  return { root, server, dir };
}

function expectRefused(
  response: { status: number; body: string; headers: Record<string, unknown> },
  what: string,
): void {
  expect([400, 404], `${what}: ${response.status} ${response.body}`).toContain(response.status);
  expect(response.headers['content-type'], what).toBe('application/json; charset=utf-8');
  ErrorBodySchema.parse(JSON.parse(response.body));
  expect(response.body, what).not.toContain(SECRET);
  expect(response.body, what).not.toContain('root:');
  expect(response.body, what).not.toContain('s3_image_urls');
  expect(response.body, what).not.toContain('character_id');
}

describe('thumbnails', () => {
  it('serves a training image with its content type, nosniff, a length and a validator; 304 when unchanged', async () => {
    const { server, dir } = await hostileRoot();
    const bytes = await readFile(join(dir, `${SEED_NAME}_0.png`));
    for (const actor of ['0', '0000', SEED_NAME]) {
      const response = await fetch(`${server.url}/thumbnails/${actor}/${SEED_NAME}_0.png`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/png');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-length')).toBe(String(bytes.length));
      expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
      const etag = response.headers.get('etag')!;
      expect(etag).toMatch(/^W\/".+"$/);
      const again = await fetch(`${server.url}/thumbnails/${actor}/${SEED_NAME}_0.png`, {
        headers: { 'If-None-Match': etag },
      });
      expect(again.status).toBe(304);
    }
    const studio = await fetch(`${server.url}/data/actors/${SEED_NAME}/training_data/${SEED_NAME}_0.png`);
    expect([studio.status, studio.headers.get('content-type')]).toEqual([200, 'image/png']);
    expect(Buffer.from(await studio.arrayBuffer()).equals(bytes)).toBe(true);
    const jpg = await fetch(`${server.url}/thumbnails/0000/${SEED_NAME}_14.jpg`);
    expect(jpg.headers.get('content-type')).toBe('image/jpeg');
    expect((await jpg.arrayBuffer()).byteLength).toBe(50_000);
  });

  it('an actor whose training_data is a symlink out of the data root: none of its files is served, and its document says why', async () => {
    const root = await tempRoot();
    const outside = join(await tempRoot(), 'training_data'); // another temp folder: outside this data root
    await mkdir(outside);
    await writeFile(join(outside, 'secret.png'), SECRET);
    await mkdir(join(root, 'data', 'actors', '0003_z'), { recursive: true });
    await symlink(outside, trainingDir(root, '0003_z'));
    const server = await serve(root);
    expectRefused(
      await rawRequest(server, '/thumbnails/0003/secret.png'),
      'a file of a training folder outside the root',
    );
    const document = await fetch(`${server.url}/api/actors/0003/training-data`);
    const body = await document.text();
    expect(body).not.toContain('secret.png');
    expect(body).toContain('a symlink leading out of the actors folder');
  });

  it('names with spaces and non-ASCII letters are served when percent-encoded', async () => {
    const root = await tempRoot();
    await addImages(root, '0007_zoë', { 'ein Bild ä.webp': pngImage(1) });
    const server = await serve(root);
    const response = await fetch(
      `${server.url}/thumbnails/${encodeURIComponent('0007_zoë')}/${encodeURIComponent('ein Bild ä.webp')}`,
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/webp');
    // The document's local_path is such a URL path, usable as it is in an <img src>.
    const document = (await (await fetch(`${server.url}/api/actors/0007/training-data`)).json()) as {
      training_images: { local_path: string }[];
    };
    const localPath = document.training_images[0]!.local_path;
    expect(localPath).toBe(
      `/data/actors/${encodeURIComponent('0007_zoë')}/training_data/${encodeURIComponent('ein Bild ä.webp')}`,
    );
    const studio = await fetch(server.url + localPath);
    expect([studio.status, studio.headers.get('content-type')]).toEqual([200, 'image/webp']);
  });

  it('refuses every traversal attempt with 400 or 404 and no file content', async () => {
    const { server } = await hostileRoot();
    const attempts = [
      // dot segments and encoded separators in the filename
      `/thumbnails/0000/..`,
      `/thumbnails/0000/%2e%2e`,
      `/thumbnails/0000/..%2F..%2Factor_manifests%2F0000_manifest.json`,
      `/thumbnails/0000/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd`,
      `/thumbnails/0000/..%5C..%5Cactor_manifests%5C0000_manifest.json`,
      `/thumbnails/0000/%2e%2e%2f%2e%2e%2fsecret.png`,
      `/thumbnails/0000/../../secret.png`,
      `/thumbnails/0000/../training_data/${SEED_NAME}_0.png`,
      `/thumbnails/0000/../../../../../../etc/passwd`,
      // ... and in the actor id
      `/thumbnails/..%2F..%2F..%2Fetc/passwd`,
      `/thumbnails/%2e%2e/secret.png`,
      `/thumbnails/../0000/${SEED_NAME}_0.png`,
      `/thumbnails/0000%2Ftraining_data/${SEED_NAME}_0.png`,
      // NUL and control characters
      `/thumbnails/0000/${SEED_NAME}_0.png%00`,
      `/thumbnails/0000/response.json%00.png`,
      `/thumbnails/0000%00/${SEED_NAME}_0.png`,
      `/thumbnails/0000/a%0d%0aSet-Cookie:x.png`,
      // absolute paths
      `/thumbnails/0000/%2Fetc%2Fpasswd`,
      `/thumbnails/0000/${encodeURIComponent(manifestPath('/', '0000'))}`,
      // files that are not training images
      `/thumbnails/0000/response.json`,
      `/thumbnails/0000/notes.txt`,
      `/thumbnails/0000/.hidden.png`,
      `/thumbnails/0001/other.png%2f`,
      // image names that lead elsewhere, or to no regular file
      `/thumbnails/0000/out-of-root.png`,
      `/thumbnails/0000/in-root-elsewhere.png`,
      `/thumbnails/0000/other-actor.png`,
      `/thumbnails/0000/notes-link.png`,
      `/thumbnails/0000/response-link.png`,
      `/thumbnails/0000/folder.png`,
      `/thumbnails/0000/fifo.png`,
      `/thumbnails/0000/broken.png`,
      `/thumbnails/0000/nothing-here.png`,
      `/thumbnails/9999/${SEED_NAME}_0.png`,
      `/thumbnails/0000_other/other.png`,
    ];
    for (const path of attempts) expectRefused(await rawRequest(server, path), path);
    // The same attempts on the studio's paths (`local_path`), where the folder is a segment of its own too.
    const studioPaths = attempts.map((path) =>
      path.replace(/^\/thumbnails\/([^/]*)\//, '/data/actors/$1/training_data/'),
    );
    const folders = [
      `/data/actors/0000/..%2Ftraining_data/${SEED_NAME}_0.png`,
      `/data/actors/0000/%2e%2e/secret.png`,
      `/data/actors/0000/training_data%2F../${SEED_NAME}_0.png`,
      `/data/actors/0000/../../secret.png`,
      `/data/actors/0000/other_folder/${SEED_NAME}_0.png`,
      `/data/actors/0000/base_image/${SEED_NAME}_0.png`,
      `/data/actors/0000/training_data`,
      `/data/actors/0000/training_data/`,
      `/data/actors/secret.png`,
      `/data/actor_manifests/0000_manifest.json`,
    ];
    for (const path of [...studioPaths, ...folders]) expectRefused(await rawRequest(server, path), path);
    // Still serving afterwards: the FIFO did not hang anything.
    expect((await rawRequest(server, `/thumbnails/0000/${SEED_NAME}_0.png`)).status).toBe(200);
    expect((await rawRequest(server, `/data/actors/${SEED_NAME}/training_data/${SEED_NAME}_0.png`)).status).toBe(200);
  });

  it('a base_image or poster_frame folder that is a symlink elsewhere, or holds links out, serves nothing', async () => {
    const { root, server } = await hostileRoot();
    const actorDir = join(root, 'data', 'actors', SEED_NAME);
    const outside = await tempRoot(); // another temp folder: outside this data root
    await writeFile(join(outside, `${SEED_NAME}_base.png`), SECRET);
    await symlink(outside, join(actorDir, 'base_image'));
    await mkdir(join(actorDir, 'poster_frame'));
    await symlink(join(root, 'secret.png'), join(actorDir, 'poster_frame', `${SEED_NAME}.png`));
    await writeFile(join(actorDir, 'poster_frame', `${SEED_NAME}_poster_urls.json`), SECRET);
    for (const path of [
      `/data/actors/0000/base_image/${SEED_NAME}_base.png`,
      `/data/actors/0000/poster_frame/${SEED_NAME}.png`,
      `/data/actors/0000/poster_frame/${SEED_NAME}_poster_urls.json`,
    ]) {
      expectRefused(await rawRequest(server, path), path);
    }
    const document = (await (await fetch(`${server.url}/api/actors/0000/training-data`)).json()) as {
      base_image_path: unknown;
    };
    expect(document.base_image_path, 'no base image that the server would refuse').toBeNull();
  });

  it('traversal in the training-data route is refused the same way', async () => {
    const { server } = await hostileRoot();
    for (const path of [
      '/api/actors/../../etc/training-data',
      '/api/actors/..%2F..%2Fetc/training-data',
      '/api/actors/%2e%2e/training-data',
      '/api/actors/0000%00/training-data',
    ]) {
      expectRefused(await rawRequest(server, path), path);
    }
  });

  it('the other actor’s own image is served under its own id', async () => {
    const { server } = await hostileRoot();
    const response = await rawRequest(server, '/thumbnails/0001/other.png');
    expect(response.status).toBe(200);
    expect(response.body).toBe(SECRET);
  });
});
