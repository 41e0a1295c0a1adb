/**
 * A client that disconnects cancels the work queued for it, on a real server: the real pool, wrapped so
 * the test holds the assessments that start. The moment the server sees the disconnect is taken from
 * Node's own HTTP diagnostics channel (the server's response emits `close`), not from a timer.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdir } from 'node:fs/promises';
import { request, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, type WorkerPool } from '../../src/engine/pool.js';
import { ActorListSchema } from '../../src/server/schema.js';
import { tempRoot } from '../helpers/root.js';
import { getJson, serve } from '../helpers/server.js';

const listeners: [string, (message: unknown) => void][] = [];
afterEach(() => {
  for (const [channel, listener] of listeners.splice(0)) unsubscribe(channel, listener);
});

/** Settles with the server's response to the next request for `path`. */
function nextResponse(path: string): Promise<ServerResponse> {
  return new Promise((resolve) => {
    const listener = (message: unknown) => {
      const { request: req, response } = message as { request: { url?: string }; response: ServerResponse };
      if (req.url === path) resolve(response);
    };
    listeners.push(['http.server.request.start', listener]);
    subscribe('http.server.request.start', listener);
  });
}

/** The real pool; each assessment waits for `release()`, and those started are counted by actor. */
function heldPool() {
  const started: string[] = [];
  const gates: (() => void)[] = [];
  const waiters: (() => void)[] = [];
  let open = false;
  const create = (threads: number | undefined): WorkerPool => {
    const pool = createPool(threads);
    return {
      ...pool,
      threads: pool.threads,
      assess: async (task) => {
        started.push(task.actor.name);
        waiters.splice(0).forEach((wake) => wake());
        if (!open) await new Promise<void>((resolve) => gates.push(resolve));
        return pool.assess(task);
      },
    };
  };
  const startedAtLeast = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (started.length >= n ? resolve() : waiters.push(check));
      check();
    });
  const release = () => {
    open = true;
    gates.splice(0).forEach((go) => go());
  };
  return { create, started, startedAtLeast, release };
}

describe('a client that disconnects', () => {
  it("cancels the actor list's queued assessments: only those already started run", async () => {
    const root = await tempRoot();
    for (let i = 0; i < 6; i += 1)
      await mkdir(join(root, 'data', 'actors', `000${i}_actor`, 'training_data'), { recursive: true });
    const held = heldPool();
    const server = await serve(root, { workers: 2, createPool: held.create });

    const response = nextResponse('/api/actors');
    const client = request({ host: '127.0.0.1', port: server.port, path: '/api/actors', agent: false });
    client.on('error', () => undefined); // the test hangs up itself
    client.end();
    await held.startedAtLeast(2); // the list assesses 2 actors at once (one per thread): 4 wait
    const closed = new Promise<void>((resolve) => void response.then((res) => res.once('close', () => resolve())));
    client.destroy();
    await closed; // the server has seen the disconnect
    held.release();

    // A new list waits for the one under way to end, then assesses every actor (none was at rest).
    const { status, body } = await getJson(`${server.url}/api/actors`);
    expect(status).toBe(200);
    expect(ActorListSchema.parse(body)).toHaveLength(6);
    expect(held.started, "the gone client's list started 2 assessments, the new one 6").toHaveLength(2 + 6);
  });
});
