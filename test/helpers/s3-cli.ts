/** The built CLI as a process, with the test S3 server's credentials in its environment. */
import { runCli, type CliResult } from './cli.js';
import { TEST_CREDENTIALS } from './s3.js';

/** The test S3 server's credentials, as a CLI process's environment. */
export const S3_ENV = {
  AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  AWS_REGION: 'us-west-1',
};

/** Runs `actor-sync ARGS` against the test S3 server's credentials. */
export function run(args: string[]): Promise<CliResult> {
  return runCli(args, S3_ENV);
}
