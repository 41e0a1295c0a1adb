/**
 * SPEC §5, keys as S3 holds them: listings ask for `EncodingType=url` and decode it (a space comes as `+`);
 * `s3://` URIs are raw keys; an https URL's `+` is a plus or a space as the listing says, never a guess; either
 * Unicode form of a filename matches. Through the AWS-behaviour proxy, which encodes listings as AWS does.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runPull } from '../../src/engine/push-pull.js';
import { parseS3Url } from '../../src/shared/s3-url.js';
import { verifyUrls } from '../../src/s3/verify.js';
import { startAwsProxy } from '../helpers/aws-proxy.js';
import { manifestPath, readJson, tempRoot, trainingDir, writeManifest } from '../helpers/root.js';
import { putObject, startS3Server, TEST_CREDENTIALS, testS3 } from '../helpers/s3.js';

const BUCKET = 'assets';
const FOLDER = 'system_actors/training_data/0000_keys';
const https = (name: string) => `https://${BUCKET}.s3.us-west-1.amazonaws.com/${FOLDER}/${name}`;
const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/** Keys as they are held in the bucket. */
const HELD = ['a b.jpg', 'c+d.jpg', '50%_off.jpg', 'Zoë 1.jpg', 'e f.jpg', 'e+f.jpg', 'Rene\u0301.jpg'];

let upstream: string;
beforeAll(async () => {
  ({ endpoint: upstream } = await startS3Server([BUCKET]));
  const s3 = testS3(upstream);
  for (const name of HELD) await putObject(s3, BUCKET, `${FOLDER}/${name}`, name);
});

describe('keys as S3 holds them', () => {
  it('listings are asked for and decoded from EncodingType=url; every spelling resolves to the key that exists', async () => {
    const proxy = await startAwsProxy(upstream);
    const s3 = testS3(proxy.endpoint);
    const urls = {
      plusForSpace: https('a+b.jpg'), // the console's spelling of "a b.jpg"
      plus: https('c+d.jpg'), // a real "+"
      rawPercent: `s3://${BUCKET}/${FOLDER}/50%_off.jpg`,
      encodedPercent: https('50%25_off.jpg'),
      nonAscii: `s3://${BUCKET}/${FOLDER}/Zoë 1.jpg`,
      nfc: https('Ren%C3%A9.jpg'), // held in NFD
      neither: https('g+h.jpg'),
      encodedPlus: https('a%2Bb.jpg'), // a "+" said plainly: never the space key "a b.jpg"
    };
    const facts = await verifyUrls(s3, Object.values(urls).map(parseS3Url));
    expect(proxy.requests.filter((r) => r.kind === 'list').every((r) => /[?&]encoding-type=url(&|$)/.test(r.url))).toBe(
      true,
    );
    expect(facts.get(urls.plusForSpace)).toMatchObject({ exists: true, md5: md5('a b.jpg'), key: `${FOLDER}/a b.jpg` });
    expect(facts.get(urls.plus)).toMatchObject({ exists: true, md5: md5('c+d.jpg') });
    expect(facts.get(urls.plus)!.key).toBeUndefined();
    expect(facts.get(urls.rawPercent)).toMatchObject({ exists: true, md5: md5('50%_off.jpg') });
    expect(facts.get(urls.encodedPercent)).toMatchObject({ exists: true, md5: md5('50%_off.jpg') });
    expect(facts.get(urls.nonAscii)).toMatchObject({ exists: true, md5: md5('Zoë 1.jpg') });
    expect(facts.get(urls.nfc)).toMatchObject({
      exists: true,
      md5: md5('Rene\u0301.jpg'),
      key: `${FOLDER}/Rene\u0301.jpg`,
    });
    expect(facts.get(urls.neither)).toMatchObject({ exists: false, md5: null, verifiable: true });
    expect(facts.get(urls.encodedPlus)).toMatchObject({ exists: false, md5: null, verifiable: true });
  });

  it('a "+" that could be either of two keys S3 holds: unknown, with one line saying so, never a guess', async () => {
    const proxy = await startAwsProxy(upstream);
    const s3 = testS3(proxy.endpoint);
    const url = https('e+f.jpg');
    const fact = (await verifyUrls(s3, [parseS3Url(url)])).get(url)!;
    expect(fact).toMatchObject({ exists: true, md5: null, verifiable: false });
    expect(fact.error).toBe(
      `${url}: S3 holds both "${FOLDER}/e+f.jpg" and "${FOLDER}/e f.jpg", and the URL may mean either; write the key unambiguously (a space as %20, a "+" as %2B)`,
    );
    // The advice holds: each unambiguous spelling names its own key.
    const plain = { plus: https('e%2Bf.jpg'), space: https('e%20f.jpg') };
    const facts = await verifyUrls(s3, Object.values(plain).map(parseS3Url));
    expect(facts.get(plain.plus)).toMatchObject({ exists: true, md5: md5('e+f.jpg'), verifiable: true });
    expect(facts.get(plain.space)).toMatchObject({ exists: true, md5: md5('e f.jpg'), verifiable: true });
  });
});

describe('without s3:ListBucket, a HEAD for each key the URL may mean', () => {
  it('finds the one that exists; two that exist are reported, never guessed between', async () => {
    const proxy = await startAwsProxy(upstream);
    proxy.denyList(BUCKET);
    const s3 = testS3(proxy.endpoint);
    const urls = {
      plusForSpace: https('a+b.jpg'),
      nfc: https('Ren%C3%A9.jpg'),
      both: https('e+f.jpg'),
      neither: https('g+h.jpg'),
    };
    const facts = await verifyUrls(s3, Object.values(urls).map(parseS3Url), { onWarning: () => undefined });
    expect(facts.get(urls.plusForSpace)).toMatchObject({ exists: true, md5: md5('a b.jpg'), key: `${FOLDER}/a b.jpg` });
    expect(facts.get(urls.nfc)).toMatchObject({
      exists: true,
      md5: md5('Rene\u0301.jpg'),
      key: `${FOLDER}/Rene\u0301.jpg`,
    });
    expect(facts.get(urls.both)).toMatchObject({ exists: true, md5: null, verifiable: false });
    expect(facts.get(urls.both)!.error).toMatch(/S3 holds both .* and the URL may mean either/);
    // A missing key reads as 403 without ListBucket: unknown, never absent.
    expect(facts.get(urls.neither)).toMatchObject({ exists: true, md5: null, verifiable: false });
  });
});

describe('transfers read the key the listing found', () => {
  it('pull of an https URL whose "+" is a space in the bucket downloads that object; an ambiguous one fails in one line', async () => {
    const root = await tempRoot();
    await mkdir(trainingDir(root, '0000_keys'), { recursive: true });
    await writeManifest(root, '0000', {
      character_id: '0000',
      training_data: [
        { filename: 'a+b.jpg', s3_url: https('a+b.jpg'), status: 's3_only' },
        { filename: 'e+f.jpg', s3_url: https('e+f.jpg'), status: 's3_only' },
      ],
    });
    const proxy = await startAwsProxy(upstream);
    const report = await runPull({
      root,
      s3: { endpoint: proxy.endpoint, forcePathStyle: true, credentials: TEST_CREDENTIALS },
      workers: 1,
    });
    expect(await readFile(join(trainingDir(root, '0000_keys'), 'a+b.jpg'), 'utf8')).toBe('a b.jpg');
    expect(report.transfers.map((t) => [t.filename, t.error])).toEqual([
      ['a+b.jpg', undefined],
      [
        'e+f.jpg',
        `${https('e+f.jpg')}: could not tell which key it names: S3 holds both "${FOLDER}/e+f.jpg" and "${FOLDER}/e f.jpg", and the URL may mean either; write the key unambiguously (a space as %20, a "+" as %2B)`,
      ],
    ]);
    const entries = (await readJson(manifestPath(root, '0000'))).training_data as Array<{
      filename: string;
      status: string;
    }>;
    expect(entries.map((e) => [e.filename, e.status])).toEqual([
      ['a+b.jpg', 'synced'],
      ['e+f.jpg', 's3_only'],
    ]);
  });
});
