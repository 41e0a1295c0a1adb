/**
 * Server hardening on loopback: a stalled client is dropped, a full queue of assessments is refused with
 * 503 + Retry-After (never queued without bound), a burst for one actor is answered, the default bind
 * address is loopback, and hostile files (a manifest nested 100 000 levels deep, a 50 MB response.json, a
 * 320 MB manifest) cost their actor an error, never the server's memory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_WAITING } from '../../src/server/api.js';
import { ListedActorSchema, ErrorBodySchema } from '../../src/server/schema.js';
import { runSync } from '../../src/engine/sync.js';
import { addImages, manifestPath, seedActor0000, SEED_NAME, tempRoot, trainingDir } from '../helpers/root.js';
import { getJson, serve, trainingDataPath } from '../helpers/server.js';

/** The server's hashing threads in these tests (helpers/server.ts), so 2 × 2 single-actor assessments run at once. */
const THREADS = 2;

describe('serve under hostile clients', () => {
  it('drops a client that never finishes its headers, while others are answered', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await serve(root, { timeouts: { headersMs: 300 } });
    const { port } = server;
    const slow = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    slow.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // and never the blank line
    let received = '';
    slow.on('data', (chunk) => (received += chunk));
    const closed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
    // 8 s: under the 10 s default, so an ignored option or no drop fails; 25× the 300 ms asked, so load does not.
    const bound = delay(8_000, false, { ref: false });
    // Meanwhile the server answers everyone else.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const hungUp = await Promise.race([closed.then(() => true), bound]);
    expect(hungUp, 'the server hangs up on the stalled client').toBe(true);
    expect(received, "by its header timeout: Node's 408").toMatch(/^HTTP\/1\.1 408 /);
  });

  it('refuses what the queue cannot hold with 503 + Retry-After over HTTP, answers the rest once the held assessments go on, and stays healthy', async () => {
    const root = await tempRoot();
    const admitted = THREADS * 2 + MAX_WAITING; // in flight + waiting
    const names = Array.from({ length: admitted + 20 }, (_, i) => `${String(i).padStart(4, '0')}_a`);
    await Promise.all(names.map((name) => addImages(root, name, { [`${name}_0.png`]: 100 })));
    // Assessments are held in their slots until the test lets them go: the queue fills behind them.
    const held: string[] = [];
    let letGo!: () => void;
    const goOn = new Promise<void>((resolve) => (letGo = resolve));
    let isHeld = true;
    let refusedWhileHeld = 0;
    let answeredWhileHeld = 0;
    let signal!: () => void;
    const full = new Promise<void>((resolve) => (signal = resolve));
    // Full: every slot holds an assessment, and at least the requests beyond what the queue admits are refused.
    const checkFull = () => {
      if (held.length === THREADS * 2 && refusedWhileHeld >= names.length - admitted) signal();
    };
    const server = await serve(root, {
      beforeAssess: async (actor) => {
        if (isHeld) held.push(actor.name);
        checkFull();
        await goOn;
      },
    });
    const answers = Promise.all(
      names.map(async (name) => {
        const response = await fetch(`${server.url}${trainingDataPath(name.slice(0, 4))}`);
        const answer = {
          name,
          status: response.status,
          type: response.headers.get('content-type'),
          retryAfter: response.headers.get('retry-after'),
          body: (await response.json()) as { actor_name?: string; total_count?: number; error?: string },
        };
        if (isHeld) {
          if (answer.status === 503) refusedWhileHeld += 1;
          else answeredWhileHeld += 1;
          checkFull();
        }
        return answer;
      }),
    );
    await full;
    expect(held, 'exactly 2 × threads assessments in flight').toHaveLength(THREADS * 2);
    expect(answeredWhileHeld, 'nothing but refusals while the assessments are held').toBe(0);
    isHeld = false;
    letGo();

    // Nothing finishes while held, so the first refusal comes with every slot and place in the queue taken:
    // exactly the requests beyond them are refused.
    const all = await answers;
    const refused = all.filter((a) => a.status === 503);
    expect(refused).toHaveLength(names.length - admitted);
    for (const answer of refused) {
      expect(answer.retryAfter).toBe('1');
      expect(answer.type).toBe('application/json; charset=utf-8');
      expect(answer.body).toEqual({
        error: 'too many requests are waiting for the hashing workers; try again shortly',
      });
    }
    const served = all.filter((a) => a.status !== 503);
    expect(served).toHaveLength(admitted);
    for (const answer of served)
      expect([answer.status, answer.body.actor_name, answer.body.total_count]).toEqual([200, answer.name, 1]);
    // Healthy afterwards: a refused actor is answered now.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const again = await fetch(`${server.url}${trainingDataPath(refused[0]!.name.slice(0, 4))}`);
    expect([again.status, ((await again.json()) as { actor_name: string }).actor_name]).toEqual([
      200,
      refused[0]!.name,
    ]);
  });

  it('answers a burst of 300 concurrent requests for one actor (they coalesce), and stays healthy', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await serve(root);
    const answers = await Promise.all(
      Array.from({ length: 300 }, async () => {
        const response = await fetch(`${server.url}${trainingDataPath('0000')}`);
        const body = (await response.json()) as { total_count?: number; error?: string };
        return { status: response.status, retryAfter: response.headers.get('retry-after'), body };
      }),
    );
    for (const answer of answers) {
      if (answer.status === 200) expect(answer.body.total_count).toBe(17);
      else {
        expect(answer.status).toBe(503);
        expect(answer.retryAfter).not.toBeNull();
        expect(answer.body.error).toBeTypeOf('string');
      }
    }
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThan(0);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('binds to 127.0.0.1 by default', async () => {
    const root = await tempRoot();
    const server = await serve(root, { host: undefined });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});

// GNU time reports the server's peak RSS (threads included) from the kernel after it exits: nothing racy.
// It ignores SIGINT, which stops `serve` gracefully, so the report is written. CI installs it (.ci/run).
const GNU_TIME = '/usr/bin/time';
const CLI = resolve(import.meta.dirname, '../../dist/src/cli/main.js');
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
});

/** `actor-sync serve` on `root` under GNU time, in a process group of its own; its URL, and a stop that returns its peak RSS in MiB. */
async function serveMeasured(root: string): Promise<{ url: string; stop: () => Promise<number> }> {
  expect(
    spawnSync(GNU_TIME, ['-f', '%M', 'true'], { encoding: 'utf8' }).stderr.trim(),
    'GNU time is installed',
  ).toMatch(/^\d+$/);
  const report = join(root, 'rss.txt');
  const child = spawn(
    GNU_TIME,
    ['-f', '%M', '-o', report, process.execPath, CLI, 'serve', '--root', root, '--port', '0', '--workers', '2'],
    { detached: true, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const url = await new Promise<string>((done, fail) => {
    let seen = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      seen += chunk;
      const match = /listening on (http:\/\/\S+)\n/.exec(seen);
      if (match) done(match[1]!);
    });
    void exited.then(() => fail(new Error(`serve exited before listening: ${seen}`)));
  });
  return {
    url,
    stop: async () => {
      process.kill(-child.pid!, 'SIGINT');
      await exited;
      return Number(readFileSync(report, 'utf8').trim().split('\n').at(-1)) / 1024;
    },
  };
}

describe('serve with hostile files', () => {
  it('a manifest nested 100 000 levels deep, a 50 MB response.json, a 320 MB manifest: their actors answer their errors, the list names them, the others answer, peak memory under 300 MB', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const hourAgo = new Date(Date.now() - 3600_000);
    for (const file of await readdir(trainingDir(root, SEED_NAME)))
      await utimes(join(trainingDir(root, SEED_NAME), file), hourAgo, hourAgo);
    await addImages(root, '0001_deep', { '0001_deep_1.png': 5000, '0001_deep_2.png': 5000 });
    await addImages(root, '0002_big', { '0002_big_1.png': 5000 });
    await runSync({ root, workers: 2 });
    // The nesting sits in a field we do not own; the 50 MB are a log in a response.json that names a URL.
    const manifest = JSON.parse(await readFile(manifestPath(root, '0001'), 'utf8'));
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    await writeFile(manifestPath(root, '0001'), JSON.stringify({ ...manifest, notes: '@@' }).replace('"@@"', deep));
    const url =
      'https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/0002_big/0002_big_1.png';
    await writeFile(
      join(trainingDir(root, '0002_big'), 'response.json'),
      Buffer.concat([
        Buffer.from('{"log": "'),
        Buffer.alloc(50 * 1024 * 1024, 'x'),
        Buffer.from(`", "output": {"output": {"s3_image_urls": ["${url}"]}}}`),
      ]),
    );
    const deepError = 'data/actor_manifests/0001_manifest.json: is nested more than 512 levels deep; left unchanged';
    const bigError =
      'data/actors/0002_big/training_data/response.json: is 50.0 MB, more than this tool reads (16 MB); left unchanged';

    const server = await serveMeasured(root);
    for (let round = 0; round < 3; round += 1) {
      const deepAnswer = await getJson(server.url + trainingDataPath('0001'));
      expect(deepAnswer.status).toBe(500);
      expect(ErrorBodySchema.parse(deepAnswer.body).error).toBe(`actor 0001_deep cannot be read: ${deepError}`);
      const bigAnswer = await getJson(server.url + trainingDataPath('0002'));
      expect(bigAnswer.status).toBe(500);
      expect(ErrorBodySchema.parse(bigAnswer.body).error).toBe(`actor 0002_big cannot be read: ${bigError}`);
      expect((await getJson(server.url + trainingDataPath('0000'))).body).toMatchObject({
        total_count: 17,
        synced_count: 12,
      });
      const list = await getJson(`${server.url}/api/actors`);
      expect(list.status).toBe(200);
      expect(
        (list.body as unknown[])
          .map((entry) => ListedActorSchema.parse(entry))
          .map((row) => [row.actor_name, row.total_count, row.error]),
      ).toEqual([
        [SEED_NAME, 17, null],
        ['0001_deep', 0, deepError],
        ['0002_big', 0, bigError],
      ]);
    }
    // Actor 0000's answer is kept now (reuse.ts); its manifest grown to 320 MB is refused unread, by the
    // fingerprint check as by the full assessment.
    await writeFile(
      manifestPath(root, '0000'),
      Buffer.concat([await readFile(manifestPath(root, '0000')), Buffer.alloc(320 * 1024 * 1024, ' ')]),
    );
    const hugeError =
      'data/actor_manifests/0000_manifest.json: is 320.0 MB, more than this tool reads (64 MB); left unchanged';
    const huge = await getJson(server.url + trainingDataPath('0000'));
    expect([huge.status, huge.body]).toEqual([500, { error: `actor ${SEED_NAME} cannot be read: ${hugeError}` }]);
    expect(ListedActorSchema.parse(((await getJson(`${server.url}/api/actors`)).body as unknown[])[0]).error).toBe(
      hugeError,
    );
    const peakMiB = await server.stop();
    expect(peakMiB, `the server's peak RSS, ${peakMiB.toFixed(0)} MiB`).toBeLessThan(300);
  });
});
