// `npm run test:aws`: the live S3 suite (vitest.aws.config.ts), run only when ACTOR_SYNC_TEST_BUCKET names a
// bucket to write to; without it, one line and exit 0, so a machine without AWS access is not failed.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

if (!process.env.ACTOR_SYNC_TEST_BUCKET?.trim()) {
  console.log(
    'test:aws skipped: set ACTOR_SYNC_TEST_BUCKET to a bucket (with AWS credentials in the standard chain) to run the live S3 suite',
  );
  process.exit(0);
}
const vitest = fileURLToPath(new URL('vitest.mjs', import.meta.resolve('vitest/package.json')));
const config = fileURLToPath(new URL('../vitest.aws.config.ts', import.meta.url));
const { status } = spawnSync(process.execPath, [vitest, 'run', '--config', config], { stdio: 'inherit' });
process.exit(status ?? 1);
