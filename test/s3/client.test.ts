import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseS3Url } from '../../src/shared/s3-url.js';
import { createS3 } from '../../src/s3/client.js';
import { upload } from '../../src/s3/transfer.js';
import { verifyUrls } from '../../src/s3/verify.js';
import { putObject, startS3Server, testS3, type TestS3Server } from '../helpers/s3.js';

let server: TestS3Server;
beforeAll(async () => {
  server = await startS3Server(['assets']);
});
afterEach(() => {
  vi.unstubAllEnvs();
});

const location = (endpoint: string) => parseS3Url(`${endpoint}/assets/system_actors/training_data/0000_a/0000_a_0.jpg`);

/** No credentials anywhere in the standard chain (and no instance metadata service to ask). */
function stubNoCredentials(): void {
  const nowhere = join(tmpdir(), 'actor-sync-no-such-aws-file');
  for (const name of [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_PROFILE',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_ROLE_ARN',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  ]) {
    vi.stubEnv(name, undefined);
  }
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', nowhere);
  vi.stubEnv('AWS_CONFIG_FILE', nowhere);
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
}

describe('S3 unreachable or credentials missing: one line, exit 2', () => {
  it('an endpoint nothing listens on', async () => {
    const s3 = testS3('http://127.0.0.1:1');
    const error = await verifyUrls(s3, [location('http://127.0.0.1:1')]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(2);
    expect((error as UsageError).message).toBe(
      'cannot reach S3 at http://127.0.0.1:1 (ECONNREFUSED); check --endpoint / AWS_ENDPOINT_URL_S3 and the network',
    );
  });

  it('the same from an upload', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'actor-sync-client-'));
    const path = join(dir, 'x.jpg');
    writeFileSync(path, 'x');
    const error = await upload(
      testS3('http://127.0.0.1:1'),
      location('http://127.0.0.1:1'),
      path,
      '9dd4e461268c8034f5c8564e155c67a6',
    ).catch((e: unknown) => e);
    rmSync(dir, { recursive: true });
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/^cannot reach S3 at http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/);
  });

  it('no credentials in the standard chain', async () => {
    stubNoCredentials();
    const s3 = createS3({ endpoint: server.endpoint, forcePathStyle: true, maxAttempts: 1 });
    try {
      const error = await verifyUrls(s3, [location(server.endpoint)]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(
        /^no AWS credentials found \(.*\); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE$/,
      );
      expect((error as Error).message).not.toContain('\n');
    } finally {
      s3.close();
    }
  });

  it('credentials S3 rejects', async () => {
    const s3 = testS3(server.endpoint, { credentials: { accessKeyId: 'WRONG', secretAccessKey: 'WRONG' } });
    const error = await verifyUrls(s3, [location(server.endpoint)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(
      `S3 at ${server.endpoint} rejected the credentials (InvalidAccessKeyId); check AWS_ACCESS_KEY_ID / AWS_PROFILE and the region`,
    );
  });
});

describe('createS3 options', () => {
  it('names the option that is invalid', () => {
    expect(() => createS3({ concurrency: 0 })).toThrow(
      new UsageError('--s3-concurrency must be a whole number of at least 1 (got 0)'),
    );
    expect(() => createS3({ concurrency: 2.5 })).toThrow(/^--s3-concurrency must be a whole number/);
    expect(() => createS3({ maxAttempts: 0 })).toThrow(/^maxAttempts must be a whole number/);
    expect(() => createS3({ requestTimeoutMs: -1 })).toThrow(/^requestTimeoutMs must be a whole number/);
    expect(() => createS3({ endpoint: 'not a url' })).toThrow(
      new UsageError('--endpoint "not a url" is not a URL; give one like http://127.0.0.1:9000'),
    );
    expect(() => createS3({ endpoint: 'ftp://host' })).toThrow(
      new UsageError('--endpoint "ftp://host" must start with http:// or https://'),
    );
  });

  it('takes the endpoint from AWS_ENDPOINT_URL_S3 and works without a region', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL_S3', `${server.endpoint}/`);
    vi.stubEnv('AWS_REGION', undefined);
    vi.stubEnv('AWS_DEFAULT_REGION', undefined);
    const s3 = testS3(undefined);
    expect(s3.endpoint).toBe(server.endpoint);
    expect(await s3.client.config.region()).toBe('us-east-1');
    await putObject(s3, 'assets', location(server.endpoint).key, 'x');
    const facts = await verifyUrls(s3, [location(server.endpoint)]);
    expect(facts.get(location(server.endpoint).url)).toMatchObject({ exists: true });
  });

  it('reads the region from AWS_REGION, then AWS_DEFAULT_REGION', async () => {
    for (const name of ['AWS_REGION', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL']) vi.stubEnv(name, undefined);
    vi.stubEnv('AWS_DEFAULT_REGION', 'eu-west-3');
    expect(await testS3(server.endpoint).client.config.region()).toBe('eu-west-3');
    vi.stubEnv('AWS_REGION', 'us-west-1');
    expect(await testS3(server.endpoint).client.config.region()).toBe('us-west-1');
    expect(testS3(undefined, { region: 'ap-south-1' }).endpoint).toBe('https://s3.ap-south-1.amazonaws.com');
  });
});

describe('output stays clean', () => {
  const hooks = pathToFileURL(join(import.meta.dirname, '..', 'fixtures', 'lock', 'ts-hooks.mjs')).href;
  const client = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 's3', 'client.ts')).href;
  /** Runs `body` in a fresh Node process (the SDK shows its notice once per process) and returns its stderr. */
  async function stderrOf(body: string): Promise<string> {
    const script = `import { register } from 'node:module'; register(${JSON.stringify(hooks)}); ${body}`;
    const { stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '' },
    });
    return stderr;
  }
  const oldNode = Number(process.versions.node.split('.')[0]) < 22;

  it('creating the client prints no Node-version notice, and other warnings still show', async () => {
    const stderr = await stderrOf(
      `const { createS3 } = await import(${JSON.stringify(client)}); createS3({}); createS3({}); process.emitWarning('still shown', 'OtherWarning');` +
        `if (process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED !== '') throw new Error('switch left set');`,
    );
    expect(stderr).not.toContain('NodeVersionSupportWarning');
    expect(stderr).toContain('OtherWarning: still shown');
  });

  it.runIf(oldNode)('(control: a bare S3Client on this Node prints it)', async () => {
    const stderr = await stderrOf(
      `const { S3Client } = await import('@aws-sdk/client-s3'); new S3Client({ region: 'us-east-1' });`,
    );
    expect(stderr).toContain('NodeVersionSupportWarning');
  });
});
