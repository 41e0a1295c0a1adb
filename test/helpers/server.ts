/**
 * The server under test: a real `startServer` on 127.0.0.1, port 0 (closed after each test), plain HTTP
 * requests that send the path exactly as written (fetch would normalize `..` away), and real PNG images
 * for the page's thumbnails.
 */
import { request } from 'node:http';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterEach } from 'vitest';
import { pngChunk } from '../../demo/generate.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/app.js';
import { SEED_NAME, trainingDir } from './root.js';

const started: RunningServer[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.close()));
});

export interface TestServer extends RunningServer {
  /** What the server logged (internal errors, with their stacks). */
  logged: string[];
}

/** Starts the server on a root (2 workers, loopback, a free port); it is closed after the test. */
export async function serve(root: string, options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const logged: string[] = [];
  const server = await startServer({
    root,
    host: '127.0.0.1',
    port: 0,
    workers: 2,
    log: (line) => logged.push(line),
    ...options,
  });
  started.push(server);
  return Object.assign(server, { logged });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with `path` sent byte for byte as given (no normalization of `..`, no re-encoding). */
export function rawRequest(
  server: RunningServer,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** `GET url` with fetch; the JSON body parsed. */
export async function getJson(url: string): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(url);
  return { status: response.status, headers: response.headers, body: await response.json() };
}

/** The training-data path of an actor id as the client writes it. */
export function trainingDataPath(actorId: string): string {
  return `/api/actors/${encodeURIComponent(actorId)}/training-data`;
}

// --- real images -------------------------------------------------------------------------------------

/** A valid `size`×`size` RGB PNG, a gradient with a disc, its colour chosen by `n` (so each `n` differs). */
export function pngImage(n: number, size = 96): Buffer {
  const hue = (n * 47) % 360;
  const [r, g, b] = hsl(hue, 0.55, 0.55);
  const raw = Buffer.alloc((size * 3 + 1) * size);
  for (let y = 0; y < size; y += 1) {
    const row = y * (size * 3 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < size; x += 1) {
      const inside = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 3.2) ** 2;
      const shade = inside ? 1.25 : 0.65 + (0.35 * (x + y)) / (2 * size);
      const at = row + 1 + x * 3;
      raw[at] = Math.min(255, Math.round(r * shade));
      raw[at + 1] = Math.min(255, Math.round(g * shade));
      raw[at + 2] = Math.min(255, Math.round(b * shade));
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit, RGB, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function hsl(h: number, s: number, l: number): [number, number, number] {
  const f = (k: number) => {
    const a = s * Math.min(l, 1 - l);
    const m = (k + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(m - 3, 9 - m, 1))));
  };
  return [f(0), f(8), f(4)];
}

/**
 * Gives the seed actor's 17 files real pictures (the seed writes random bytes), keeping `_4.jpg` a copy
 * of `_4.png`. Call it right after `seedActor0000`, before any sync: nothing has recorded a hash yet.
 */
export async function picturesForSeed(root: string): Promise<void> {
  const dir = trainingDir(root, SEED_NAME);
  const names = (await readdir(dir)).filter((name) => /\.(png|jpg)$/.test(name)).sort();
  for (const [i, name] of names.entries()) {
    if (name === `${SEED_NAME}_4.jpg`) continue;
    await writeFile(join(dir, name), pngImage(i));
  }
  await writeFile(join(dir, `${SEED_NAME}_4.jpg`), pngImage(names.indexOf(`${SEED_NAME}_4.png`)));
}
