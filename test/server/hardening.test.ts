/**
 * Server hardening on loopback: a stalled client is dropped, a full queue of assessments is refused with
 * 503 + Retry-After (never queued without bound), a burst for one actor is answered, the default bind
 * address is loopback.
 */
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MAX_WAITING } from '../../src/server/api.js';
import { addImages, seedActor0000, tempRoot } from '../helpers/root.js';
import { serve, trainingDataPath } from '../helpers/server.js';

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
        const answer = { name, status: response.status, type: response.headers.get('content-type'), retryAfter: response.headers.get('retry-after'), body: (await response.json()) as { actor_name?: string; total_count?: number; error?: string } };
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
      expect(answer.body).toEqual({ error: 'too many requests are waiting for the hashing workers; try again shortly' });
    }
    const served = all.filter((a) => a.status !== 503);
    expect(served).toHaveLength(admitted);
    for (const answer of served) expect([answer.status, answer.body.actor_name, answer.body.total_count]).toEqual([200, answer.name, 1]);
    // Healthy afterwards: a refused actor is answered now.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const again = await fetch(`${server.url}${trainingDataPath(refused[0]!.name.slice(0, 4))}`);
    expect([again.status, ((await again.json()) as { actor_name: string }).actor_name]).toEqual([200, refused[0]!.name]);
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
