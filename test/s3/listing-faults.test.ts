/**
 * SPEC §5, listing faults are errors: a truncated page without a continuation token fails the listing
 * (nothing under it is called absent); without s3:ListBucket each URL gets one HEAD, with one warning naming
 * the permission, and a HEAD's 403 is unknown, never absent. `sync --remote` end to end, through the
 * AWS-behaviour proxy.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SyncSummarySchema } from '../../src/engine/summary.js';
import { parseS3Url } from '../../src/shared/s3-url.js';
import { verifyUrls } from '../../src/s3/verify.js';
import { startAwsProxy } from '../helpers/aws-proxy.js';
import { run } from '../helpers/s3-cli.js';
import {
  manifestPath,
  md5,
  SEED_LISTED,
  SEED_NAME,
  SEED_URLS,
  seedActor0000,
  tempRoot,
  trainingDir,
} from '../helpers/root.js';
import { putObject, startS3Server, testS3 } from '../helpers/s3.js';

const BUCKET = 'story-boards-assets';
const key = (file: string) => `system_actors/training_data/${SEED_NAME}/${file}`;
const ABSENT = `${SEED_NAME}_8.png`;

let upstream: string;
beforeAll(async () => {
  ({ endpoint: upstream } = await startS3Server([BUCKET]));
});

/** The seed's actor with its listed images in S3, `_8.png` apart (so a listing that ends early would call it absent). */
async function seededRoot(): Promise<string> {
  const root = await tempRoot();
  await seedActor0000(root);
  const s3 = testS3(upstream);
  for (const file of SEED_LISTED)
    if (file !== ABSENT) await putObject(s3, BUCKET, key(file), readFileSync(join(trainingDir(root, SEED_NAME), file)));
  return root;
}

async function syncRemote(root: string, endpoint: string) {
  const r = await run(['sync', '--root', root, '--remote', '--endpoint', endpoint, '--force-path-style', '--json']);
  return { ...r, summary: SyncSummarySchema.parse(JSON.parse(r.stdout)) };
}

describe('a truncated page without a continuation token', () => {
  it('fails the listing: every URL under it is unknown, none absent', async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.truncateWithoutToken();
    const s3 = testS3(proxy.endpoint);
    const facts = await verifyUrls(s3, SEED_URLS.map(parseS3Url));
    expect(facts.size).toBe(SEED_URLS.length);
    for (const fact of facts.values()) {
      expect(fact).toMatchObject({ exists: true, verifiable: false });
      expect(fact.error).toBe(
        `s3://${BUCKET}/system_actors/training_data/${SEED_NAME}/: listing cut short: S3 said more keys follow but gave no continuation token; nothing under it is taken to be absent`,
      );
    }
  });

  it('sync --remote: exit 1, the actor reported, its manifest and response.json left as they were', async () => {
    const root = await seededRoot();
    const before = await readFile(manifestPath(root, '0000'), 'utf8');
    const proxy = await startAwsProxy(upstream);
    proxy.truncateWithoutToken();
    const { code, summary } = await syncRemote(root, proxy.endpoint);
    expect(code).toBe(1);
    expect(summary.errors.length).toBeGreaterThan(0);
    expect(summary.errors.every((e) => /listing cut short/.test(e.reason))).toBe(true);
    expect(await readFile(manifestPath(root, '0000'), 'utf8')).toBe(before);
    expect(existsSync(join(trainingDir(root, SEED_NAME), 'response.json'))).toBe(true);
  });
});

describe('no s3:ListBucket', () => {
  it('one HEAD per URL, one warning naming the permission; present objects verified, a 403 unknown (never absent)', async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.denyList(BUCKET);
    const root = await seededRoot();
    const s3 = testS3(proxy.endpoint);
    const warnings: Array<[string, string]> = [];
    const facts = await verifyUrls(s3, SEED_URLS.map(parseS3Url), {
      onWarning: (file, reason) => void warnings.push([file, reason]),
    });
    expect(warnings).toEqual([
      [
        `s3://${BUCKET}/`,
        'listing denied (AccessDenied): the credentials lack s3:ListBucket on this bucket; each image is checked with a HEAD instead, where a missing object reads as 403 and is reported as could not be checked',
      ],
    ]);
    expect(proxy.count('list')).toBe(1);
    expect(proxy.count('head')).toBe(SEED_URLS.length);
    for (const url of SEED_URLS) {
      const fact = facts.get(url)!;
      if (url.endsWith(ABSENT)) {
        expect(fact).toMatchObject({ exists: true, md5: null, verifiable: false });
        expect(fact.error).toBe(
          `${url}: S3 answered 403 (without s3:ListBucket a missing object and a denied one look the same)`,
        );
      } else {
        const local = readFileSync(join(trainingDir(root, SEED_NAME), url.slice(url.lastIndexOf('/') + 1)));
        expect(fact).toMatchObject({ exists: true, verifiable: true, md5: md5(local) });
      }
    }
  });

  it('sync --remote: one warning per run naming s3:ListBucket; the image S3 answers 403 for is could-not-check, never missing', async () => {
    const root = await seededRoot();
    const before = await readFile(manifestPath(root, '0000'), 'utf8');
    const proxy = await startAwsProxy(upstream);
    proxy.denyList(BUCKET);
    const { code, summary } = await syncRemote(root, proxy.endpoint);
    expect(code).toBe(1);
    expect(summary.warnings.filter((w) => /s3:ListBucket/.test(w.reason))).toHaveLength(1);
    expect(summary.errors).toHaveLength(1);
    expect(summary.errors[0]!.reason).toMatch(
      /^could not be checked in S3 \(.*S3 answered 403 .*\); manifest left unchanged$/,
    );
    expect(summary.errors[0]!.file).toBe(SEED_URLS.find((u) => u.endsWith(ABSENT)));
    expect(await readFile(manifestPath(root, '0000'), 'utf8')).toBe(before);
    expect(summary.s3_requests).toMatchObject({ list: 1, head: SEED_URLS.length });
  });
});
