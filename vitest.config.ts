import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [
    {
      // Added here rather than in test.reporters, which a --reporter flag replaces: a run that skips a test
      // not listed in test/allowed-skips.json fails, whichever reporters print it.
      name: 'actor-sync:allowed-skips',
      configureVitest({ vitest }) {
        vitest.config.reporters.push([resolve(import.meta.dirname, 'test/allowed-skips.ts'), {}]);
      },
    },
  ],
  test: {
    include: ['test/**/*.test.ts'],
    // Builds the worker bundle first: tests that start a pool never load a stale one.
    globalSetup: ['test/global-setup.ts'],
    // Tests spawn real worker pools and CLI processes; the machine has two cores.
    pool: 'forks',
    maxWorkers: 2,
    // Guards against a hang, not timings: a test that spawns a few CLIs takes 15 s on a quiet machine and
    // four times that at a load of 30 (push, pull and check --remote against s3rver, seen at 60 s).
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // The sync caches of the tests' runs (and of the CLIs they spawn) go to a folder of this test run's own,
    // not to the user's ~/.cache.
    env: { XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), 'actor-sync-test-cache-')) },
  },
});
