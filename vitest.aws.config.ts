import { defineConfig } from 'vitest/config';

/** The live S3 suite (`npm run test:aws`): never part of `npm test`; test-aws/run.mjs starts it. */
export default defineConfig({
  test: {
    include: ['test-aws/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
