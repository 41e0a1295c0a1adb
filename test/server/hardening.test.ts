/** Server hardening on loopback: a stalled client is dropped, a burst of connections is answered or refused (never queued without bound), the default bind address is loopback. */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { seedActor0000, tempRoot } from '../helpers/root.js';
import { serve, trainingDataPath } from '../helpers/server.js';

describe('serve under hostile clients', () => {
  it('drops a client that never finishes its headers, while others are answered', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await serve(root, { timeouts: { headersMs: 400, requestMs: 800 } });
    const { port } = server;
    const slow = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    slow.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // and never the blank line
    let received = '';
    slow.on('data', (chunk) => (received += chunk));
    const closed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
    // Meanwhile the server answers everyone else.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    await closed; // the test's own timeout bounds this: the server must hang up
    expect(received === '' || received.startsWith('HTTP/1.1 408')).toBe(true);
  });

  it('answers a burst of 300 concurrent requests with 200 or 503 + Retry-After, and stays healthy', async () => {
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
