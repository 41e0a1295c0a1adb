/**
 * s3rver, the S3-compatible server the demo, the benchmark and the tests start in-process on loopback, with
 * the one fix it needs on Node ≥ 17 (below). A dev dependency: nothing in the CLI imports this.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

const require = createRequire(import.meta.url);

/** s3rver's built-in account: requests signed with anything else get InvalidAccessKeyId. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface LocalS3 {
  endpoint: string;
  close(): Promise<void>;
}

/** Starts s3rver on 127.0.0.1, port 0, in a temp folder, with these buckets. */
export async function startLocalS3(buckets: string[]): Promise<LocalS3> {
  allowSingleDes(require('node:crypto') as typeof import('node:crypto'));
  const directory = mkdtempSync(join(tmpdir(), 'actor-sync-s3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  let closed = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      if (closed) return;
      closed = true;
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 (Node ≥ 17) only has
 * in its legacy provider: every listing of more than 1000 keys fails with InternalError. Triple DES with
 * the key repeated three times is the same cipher and is in the default provider, so `des` is mapped to
 * it (tokens are byte-identical to `node --openssl-legacy-provider`). Nothing else is touched.
 */
export function allowSingleDes(crypto: typeof import('node:crypto')): void {
  const marker = Symbol.for('actor-sync.single-des');
  const patched = crypto as unknown as Record<symbol, boolean>;
  if (patched[marker]) return;
  patched[marker] = true;
  const { createCipheriv, createDecipheriv } = crypto;
  const tripled = (key: unknown) => Buffer.concat([key, key, key] as Buffer[]);
  crypto.createCipheriv = ((algorithm: string, key: Buffer, iv: Buffer, options?: never) =>
    algorithm === 'des'
      ? createCipheriv('des-ede3-cbc', tripled(key), iv, options)
      : createCipheriv(algorithm, key, iv, options)) as typeof createCipheriv;
  crypto.createDecipheriv = ((algorithm: string, key: Buffer, iv: Buffer, options?: never) =>
    algorithm === 'des'
      ? createDecipheriv('des-ede3-cbc', tripled(key), iv, options)
      : createDecipheriv(algorithm, key, iv, options)) as typeof createDecipheriv;
}
