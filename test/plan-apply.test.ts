/**
 * The engine's modes (src/sync.ts): plan() and apply() as push, pull and the commands use them, and SPEC §3's
 * interrupt rule in a remote run: a signal stops dispatching new actors, whatever the run looks at.
 */
import { describe, expect, it } from 'vitest';
import { createPool, type WorkerPool } from '../src/engine/pool.js';
import { runSync } from '../src/engine/sync.js';
import { addImages, SEED_BASE, tempRoot, writeResponseJson } from './helpers/root.js';
import { startS3Server, TEST_CREDENTIALS } from './helpers/s3.js';

describe('modes', () => {
  it('sync --remote interrupted while the first actor is assessed: the actors not yet dispatched are not run', async () => {
    const root = await tempRoot();
    const names = Array.from({ length: 6 }, (_, i) => `000${i}_actor`);
    for (const name of names) {
      await addImages(root, name, { [`${name}_0.png`]: 10 });
      await writeResponseJson(root, name, [`${SEED_BASE}/${name}/${name}_0.png`]);
    }
    const server = await startS3Server(['story-boards-assets']);
    const real = createPool(1);
    const controller = new AbortController();
    // The signal arrives as the first actor reaches a thread: every other actor is still to be dispatched.
    const pool: WorkerPool = {
      threads: 1,
      assess: (task) => {
        controller.abort();
        return real.assess(task);
      },
      urls: (task) => real.urls(task),
      hash: (task) => real.hash(task),
      start: () => real.start(),
      destroy: async () => undefined,
    };
    try {
      const report = await runSync({
        root,
        pool,
        signal: controller.signal,
        remote: { endpoint: server.endpoint, forcePathStyle: true, credentials: TEST_CREDENTIALS },
      });
      expect(report.interrupted).toBe(true);
      expect(report.actors.filter((a) => a.manifest === 'not-run')).toHaveLength(5);
      expect(report.actors.filter((a) => a.manifest === 'created')).toHaveLength(1);
    } finally {
      await real.destroy();
    }
  });
});
