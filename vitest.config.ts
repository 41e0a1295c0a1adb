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
    // Tests spawn real worker pools and CLI processes; the machine has two cores.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The sync caches of the tests' runs (and of the CLIs they spawn) go to a folder of this test run's own,
    // not to the user's ~/.cache.
    env: { XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), 'actor-sync-test-cache-')) },
  },
});
