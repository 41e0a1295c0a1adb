/**
 * The rest of SPEC §6 over real HTTP: `GET /api/actors`, `GET /healthz`, `GET /` and its files, and the
 * errors: 404 unknown actor or route, 400 malformed id, 405 other methods, 409 an id two folders share,
 * 421 a foreign Host on a loopback server; JSON everywhere, never a stack trace.
 */
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ActorListSchema, ErrorBodySchema, HealthSchema } from '../../src/server/schema.js';
import { addImages, manifestPath, SEED_NAME, seedActor0000, tempRoot, trainingDir } from '../helpers/root.js';
import { getJson, rawRequest, serve, trainingDataPath } from '../helpers/server.js';

function expectJsonError(
  response: { status: number; headers: Record<string, unknown>; body: string },
  status: number,
): string {
  expect(response.status, response.body).toBe(status);
  expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(response.headers['x-content-type-options']).toBe('nosniff');
  const { error } = ErrorBodySchema.parse(JSON.parse(response.body));
  expect(response.body).not.toMatch(/\bat .*\.(js|ts):\d+/);
  return error;
}

describe('GET /api/actors', () => {
  it('lists every actor with its counts, sorted by folder name; a broken one with its error', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    await addImages(root, '0001_european_20_female', { 'a.png': 10, 'b.jpg': 10 });
    await addImages(root, '0002_broken', { 'a.png': 10 });
    await writeFile(manifestPath(root, '0002'), 'not json');
    await mkdir(join(root, 'data', 'actors', '0003_empty'));
    const server = await serve(root);

    const { status, headers, body } = await getJson(`${server.url}/api/actors`);
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toBe('no-store');
    const list = ActorListSchema.parse(body);
    expect(list.map((a) => a.actor_name)).toEqual([SEED_NAME, '0001_european_20_female', '0002_broken', '0003_empty']);
    // Without the studio's data/actorsData.json, each actor is `{id, name}` with our row.
    expect(list[0]).toEqual({
      id: 0,
      name: SEED_NAME,
      training_data: { count: 17, synced: false },
      training_data_good: false,
      custom_models_count: 0,
      custom_models_good: false,
      production_synced: false,
      actor_id: '0000',
      actor_name: SEED_NAME,
      total_count: 17,
      synced_count: 12,
      local_only_count: 5,
      s3_only_count: 0,
      out_of_sync_count: 0,
      missing_count: 0,
      untracked_count: 17,
      manifest_updated: null,
      error: null,
    });
    expect(list[1]).toMatchObject({ actor_id: '0001', total_count: 2, local_only_count: 2, error: null });
    expect(list[2]).toMatchObject({ actor_id: '0002', total_count: 0 });
    expect(list[2]!.error).toMatch(/^data\/actor_manifests\/0002_manifest\.json: invalid JSON/);
    expect(list[3]).toMatchObject({ actor_id: '0003', total_count: 0, error: null });
  });

  it("with the studio's data/actorsData.json: its entries first, in its order and as they are, with our row over each; then folders it does not name", async () => {
    const root = await tempRoot();
    await addImages(root, '0001_european_20_female', { 'a.png': 10 });
    await addImages(root, '0009_extra', { 'b.png': 10 });
    const studioFile = join(root, 'data', 'actorsData.json');
    const entries = [
      { id: 1, name: '0001_european_20_female', age: '20', training_data: { s3_urls: [] }, error: 'theirs' },
      // Without a folder: kept as it is, its own `training_data` (the studio's type has one) included.
      { id: 2, name: '0002_no_folder_here', age: '35', training_data: { s3_urls: ['x'], count: 3, synced: 'yes' } },
    ];
    await writeFile(studioFile, JSON.stringify(entries));
    const server = await serve(root);
    const list = ActorListSchema.parse((await getJson(`${server.url}/api/actors`)).body);
    expect(list.map((a) => a.name)).toEqual(['0001_european_20_female', '0002_no_folder_here', '0009_extra']);
    // Kept as is but for the studio's own `training_data` (its handler replaces it too) and our fields.
    expect(list[0]).toMatchObject({
      id: 1,
      age: '20',
      training_data: { count: 1, synced: false },
      actor_id: '0001',
      local_only_count: 1,
      error: null,
    });
    expect(list[1]).toEqual(entries[1]);
    expect(list[2]).toMatchObject({ id: 9, name: '0009_extra', actor_id: '0009', total_count: 1 });

    // Read again once it changes.
    await writeFile(studioFile, JSON.stringify([{ ...entries[0], age: '21' }]));
    expect((await getJson(`${server.url}/api/actors`)).body[0].age).toBe('21');

    for (const [text, reason] of [
      ['[{"id": 1}]', '[0].name is missing'],
      ['{"id": 1', 'invalid JSON'],
      ['{}', 'the top level is not a list (got object)'],
    ] as const) {
      await writeFile(studioFile, text);
      const error = expectJsonError(await rawRequest(server, '/api/actors'), 500);
      expect(error).toContain(`data/actorsData.json cannot be used: ${reason}`);
      expect(error).not.toContain(root);
    }
    const outside = join(await tempRoot(), 'actorsData.json'); // another temp folder: outside this data root
    await writeFile(outside, JSON.stringify(entries));
    await rm(studioFile);
    await symlink(outside, studioFile);
    expect(expectJsonError(await rawRequest(server, '/api/actors'), 500)).toBe(
      'data/actorsData.json cannot be used: is a symlink leading out of the data root; not followed',
    );
  });

  it('an empty data root lists no actor', async () => {
    const server = await serve(await tempRoot());
    expect((await getJson(`${server.url}/api/actors`)).body).toEqual([]);
  });
});

describe('GET /healthz and the page', () => {
  it("/healthz answers ok, the body the README's route table documents", async () => {
    const readme = await readFile(join(import.meta.dirname, '../../README.md'), 'utf8');
    const documented = /^\| `GET \/healthz` \| `(.*)` \|$/m.exec(readme)?.[1];
    expect(documented, 'the README has no GET /healthz row').toBeDefined();
    const server = await serve(await tempRoot());
    const { status, body } = await getJson(`${server.url}/healthz`);
    expect(status).toBe(200);
    expect(HealthSchema.parse(body)).toEqual({ status: 'ok' });
    expect(body).toEqual(JSON.parse(documented!));
  });

  it('/ is HTML under a Content-Security-Policy that allows no inline script; its script and style are served beside it', async () => {
    const server = await serve(await tempRoot());
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/page.js"></script>');
    expect(html).not.toMatch(/<script>|<style>|\sstyle=|\son[a-z]+=/);
    for (const [path, type] of [
      ['/page.js', 'text/javascript; charset=utf-8'],
      ['/page.css', 'text/css; charset=utf-8'],
      ['/favicon.svg', 'image/svg+xml'],
    ]) {
      const file = await fetch(server.url + path);
      expect(file.status, path).toBe(200);
      expect(file.headers.get('content-type')).toBe(type);
      await file.arrayBuffer();
    }
  });
});

describe('errors', () => {
  it('404 for an unknown actor, in JSON', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await serve(root);
    for (const id of ['9999', '1', 'nobody', '0000_european_16_female', '.hidden']) {
      const error = expectJsonError(await rawRequest(server, trainingDataPath(id)), 404);
      expect(error).toContain('no actor');
    }
  });

  it('400 for a malformed id: dot segments, encoded slashes and backslashes, NUL, control characters, bad encoding', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await serve(root);
    for (const raw of [
      '..',
      '.',
      '%2e%2e',
      '%2E',
      '..%2F..%2Fetc',
      '0000%2Ftraining_data',
      '%5C..',
      '0000%00',
      '%00',
      '%0a',
      '%ZZ',
      '%',
      '',
    ]) {
      const error = expectJsonError(await rawRequest(server, `/api/actors/${raw}/training-data`), 400);
      expect(error, raw).toMatch(/the actor id is (malformed|not valid percent-encoding)/);
    }
  });

  it('409 for an id two folders share (they would share one manifest), as sync says', async () => {
    const root = await tempRoot();
    await addImages(root, '0005_a', { 'x.png': 10 });
    await addImages(root, '0005_b', { 'y.png': 10 });
    const server = await serve(root);
    for (const id of ['5', '0005', '0005_a']) {
      const error = expectJsonError(await rawRequest(server, trainingDataPath(id)), 409);
      expect(error).toMatch(/0005_a, 0005_b|share the id/);
    }
    const list = ActorListSchema.parse((await getJson(`${server.url}/api/actors`)).body);
    expect(list.map((a) => a.error)).toEqual([
      expect.stringContaining('share the id 0005'),
      expect.stringContaining('share the id 0005'),
    ]);
  });

  it('409 for actors whose training_data is one folder (a symlink), as sync fails them; no path in the answer', async () => {
    const root = await tempRoot();
    await addImages(root, '0005_a', { 'x.png': 10 });
    await mkdir(join(root, 'data', 'actors', '0006_b'));
    await symlink(trainingDir(root, '0005_a'), trainingDir(root, '0006_b'));
    const server = await serve(root);
    for (const [id, other] of [
      ['5', '0006_b'],
      ['0006_b', '0005_a'],
    ]) {
      const error = expectJsonError(await rawRequest(server, trainingDataPath(id!)), 409);
      expect(error).toBe(
        `its training_data is also the training_data of ${other} (a symlink); an actor's training_data must be its own`,
      );
    }
    const list = ActorListSchema.parse((await getJson(`${server.url}/api/actors`)).body);
    expect(list.map((a) => a.error)).toEqual([
      expect.stringContaining('also the training_data of 0006_b'),
      expect.stringContaining('also the training_data of 0005_a'),
    ]);
  });

  it('405 with Allow for other methods; HEAD works like GET without a body', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await serve(root);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const path of [
        '/api/actors',
        trainingDataPath('0000'),
        '/healthz',
        '/',
        `/thumbnails/0000/${SEED_NAME}_0.png`,
      ]) {
        const response = await rawRequest(server, path, { method });
        expect(expectJsonError(response, 405)).toContain(`${method} is not supported`);
        expect(response.headers.allow).toBe('GET, HEAD');
      }
    }
    const head = await rawRequest(server, trainingDataPath('0000'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('404 for every other path, with no directory listing', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await serve(root);
    for (const path of [
      '/data',
      '/data/',
      '/data/actors/',
      '/api',
      '/api/',
      '/api/actors/',
      '/api/actors/0000',
      '/api/actors/0000/',
      '/api/actors/0000/training-data/',
      '/thumbnails',
      '/thumbnails/',
      '/thumbnails/0000',
      '//',
      '/index.html',
      '/favicon.ico',
      '/../../etc/passwd',
    ]) {
      const response = await rawRequest(server, path);
      expectJsonError(response, 404);
      expect(response.body, path).not.toContain(SEED_NAME);
    }
    // The one path of this shape that is a route: a thumbnail with an empty filename, which is malformed.
    const empty = await rawRequest(server, '/thumbnails/0000/');
    expectJsonError(empty, 400);
    expect(empty.body).not.toContain(SEED_NAME);
  });

  it('421 when a loopback server is asked under another name (DNS rebinding); loopback names are fine', async () => {
    const server = await serve(await tempRoot());
    const error = expectJsonError(
      await rawRequest(server, '/api/actors', { headers: { Host: 'evil.example:8787' } }),
      421,
    );
    expect(error).toContain('evil.example');
    for (const host of [
      `localhost:${server.port}`,
      `127.0.0.1:${server.port}`,
      'LOCALHOST',
      `app.localhost:${server.port}`,
      '[::1]:80',
    ]) {
      expect((await rawRequest(server, '/healthz', { headers: { Host: host } })).status, host).toBe(200);
    }
  });

  it('--allowed-host names are answered too, others still 421; given any, a non-loopback server checks Host as well', async () => {
    const server = await serve(await tempRoot(), { allowedHosts: ['Studio.Local'] });
    for (const host of ['studio.local', 'STUDIO.local:5173', `localhost:${server.port}`]) {
      expect((await rawRequest(server, '/api/actors', { headers: { Host: host } })).status, host).toBe(200);
    }
    for (const host of ['evil.example', 'studio.local.evil.example', 'sub.studio.local']) {
      expect(
        expectJsonError(await rawRequest(server, '/api/actors', { headers: { Host: host } }), 421),
        host,
      ).toContain('--allowed-host');
    }
    const anyAddress = await serve(await tempRoot(), { host: '0.0.0.0', allowedHosts: ['studio.local'] });
    expectJsonError(await rawRequest(anyAddress, '/healthz', { headers: { Host: 'evil.example' } }), 421);
    expect((await rawRequest(anyAddress, '/healthz', { headers: { Host: 'studio.local' } })).status).toBe(200);
  });

  it('--cors-origin: that origin may read answers and its preflight is answered; no other origin is named', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const origin = 'http://localhost:5173';
    const server = await serve(root, { corsOrigin: origin });
    const allowed = await rawRequest(server, '/api/actors', { headers: { Origin: origin } });
    expect([allowed.status, allowed.headers['access-control-allow-origin'], allowed.headers.vary]).toEqual([
      200,
      origin,
      'Origin',
    ]);
    const document = await rawRequest(server, trainingDataPath('0'), { headers: { Origin: origin } });
    expect(document.headers['access-control-allow-origin']).toBe(origin);
    const other = await rawRequest(server, '/api/actors', { headers: { Origin: 'http://evil.example' } });
    expect([other.status, other.headers['access-control-allow-origin']]).toEqual([200, undefined]);
    const preflight = await rawRequest(server, '/api/actors', {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'GET' },
    });
    expect([
      preflight.status,
      preflight.headers['access-control-allow-origin'],
      preflight.headers['access-control-allow-methods'],
    ]).toEqual([204, origin, 'GET, HEAD']);
    expectJsonError(
      await rawRequest(server, '/api/actors', { method: 'OPTIONS', headers: { Origin: 'http://evil.example' } }),
      405,
    );
    // Without the flag, no origin is named.
    const plain = await serve(root);
    expect(
      (await rawRequest(plain, '/api/actors', { headers: { Origin: origin } })).headers['access-control-allow-origin'],
    ).toBeUndefined();
  });

  it('an unexpected failure answers a fixed sentence; the stack goes to the server log only', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await serve(root);
    // The actors folder turning into a file under a running server: discovery itself throws.
    const actors = join(root, 'data', 'actors');
    await rm(actors, { recursive: true });
    await writeFile(actors, 'not a folder');
    for (const path of ['/api/actors', trainingDataPath('0000')]) {
      const response = await rawRequest(server, path);
      expect(expectJsonError(response, 500)).toBe('internal error; see the server log');
      expect(response.body).not.toContain(root);
    }
    expect(server.logged).toHaveLength(2);
    expect(server.logged[0]).toMatch(/GET \/api\/actors: .*ENOTDIR/);
  });
});
