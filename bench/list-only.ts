/**
 * For `npm run bench:remote`: the listing `--remote` makes, alone (Node's start, the AWS SDK, every page of
 * one prefix, parsed and dropped): how much of the remote check's time is the listing itself.
 *
 *   node dist/bench/list-only.js ENDPOINT BUCKET PREFIX    (credentials from the environment)
 */
import { createS3 } from '../src/s3/client.js';
import { listAll } from '../src/s3/list.js';

const [endpoint, bucket, prefix] = process.argv.slice(2);
if (!endpoint || !bucket || prefix === undefined) {
  process.stderr.write('usage: node dist/bench/list-only.js ENDPOINT BUCKET PREFIX\n');
  process.exit(2);
}
const s3 = createS3({ endpoint, forcePathStyle: true });
try {
  await listAll(s3, { bucket, prefix }, new Set());
  process.stdout.write(`${s3.stats.list}\n`);
} finally {
  s3.close();
}
