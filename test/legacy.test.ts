import { spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { readPromptMetadataFile, readResponseJsonFile, urlsByFilename } from '../src/manifest/legacy.js';
import { builtForUnprivileged, unprivileged } from './helpers/unprivileged.js';
import { escapeRegExp, rejection, thrownBy } from './helpers/values.js';

const SAMPLE = join(import.meta.dirname, 'fixtures/actor_maker-sample/data/actors');
const ASSETS = 'https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'actor-sync-legacy-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

/** The URLs read-actor.ts gets from a response.json (null: no such file). */
const urlsIn = async (path: string) => (await readResponseJsonFile(path))?.urls ?? null;
/** The images read-actor.ts gets from a prompt_metadata.json (null: no such file). */
const imagesIn = async (path: string) => (await readPromptMetadataFile(path))?.images ?? null;

/**
 * readResponseJsonFile(path) of the build in a child run as the `unprivileged` user (root reads anything):
 * what it throws, as `Class: message`, or what it returned.
 */
function readResponseJsonUnprivileged(path: string): string {
  const legacy = pathToFileURL(builtForUnprivileged('dist/src/manifest/legacy.js')).href;
  const script = `const { readResponseJsonFile } = await import(${JSON.stringify(legacy)});
    try { process.stdout.write('returned ' + JSON.stringify((await readResponseJsonFile(process.argv[1]))?.urls ?? null)); }
    catch (error) { process.stdout.write(error.constructor.name + ': ' + error.message); }`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script, path], {
    encoding: 'utf8',
    ...unprivileged,
  });
  expect(child.stderr).toBe('');
  return child.stdout;
}

function response(urls: unknown): string {
  return JSON.stringify({
    id: 'job',
    output: { output: { actor_id: '0000_x', s3_image_urls: urls }, status: 'success' },
  });
}

describe('readResponseJsonFile on the studio samples', () => {
  it.each([
    ['0000_european_16_male', 12, `${ASSETS}/0000_european_16_male/0000_european_16_male_4.png`],
    ['0001_european_20_female', 12, `${ASSETS}/0001_european_20_female/0001_european_20_female_8.png`],
    // 0004 names `character_id` instead of `actor_id`, and URLs in two buckets.
    [
      '0004_european_35_male',
      15,
      'https://storyboard-user-files.s3.us-west-1.amazonaws.com/99999999-9999-9999-9999-999999999999/custom_actor/0004_european_35_male/training_data/0004_european_35_male_2.png',
    ],
  ])('%s holds %i URLs', async (actor, count, first) => {
    const path = join(SAMPLE, actor, 'training_data', 'response.json');
    const urls = await urlsIn(path);
    expect(urls).toHaveLength(count);
    expect(urls?.[0]).toBe(first);
    expect(urlsByFilename(urls!, path).size).toBe(count);
  });

  it("maps actor 0000's 12 URLs to its filenames _4 … _17", async () => {
    const path = join(SAMPLE, '0000_european_16_male', 'training_data', 'response.json');
    const byFilename = urlsByFilename((await urlsIn(path))!, path);
    expect([...byFilename.keys()]).toEqual(
      [4, 6, 8, 9, 10, 11, 12, 13]
        .map((n) => `0000_european_16_male_${n}.png`)
        .concat([14, 15, 16, 17].map((n) => `0000_european_16_male_${n}.jpg`)),
    );
    expect(byFilename.get('0000_european_16_male_4.png')).toMatchObject({
      bucket: 'story-boards-assets',
      key: 'system_actors/training_data/0000_european_16_male/0000_european_16_male_4.png',
    });
  });
});

describe('readResponseJsonFile', () => {
  it('returns null when there is no response.json', async () => {
    expect(await urlsIn(join(dir, 'response.json'))).toBeNull();
  });

  it('strips a UTF-8 byte order mark', async () => {
    const path = await file('response.json', `\uFEFF${response(['s3://b/x.jpg'])}`);
    expect(await urlsIn(path)).toEqual(['s3://b/x.jpg']);
  });

  it('accepts an empty list and unknown keys at every level', async () => {
    const path = await file(
      'response.json',
      JSON.stringify({ extra: 1, output: { more: [], output: { character_id: 'c', s3_image_urls: [] } } }),
    );
    expect(await urlsIn(path)).toEqual([]);
  });

  const shapes: Array<[what: string, content: string, reason: string]> = [
    ['top level is a list', '[]', 'the top level is not an object (got list)'],
    ['top level is null', 'null', 'the top level is not an object (got null)'],
    ['output missing', '{}', 'output is missing'],
    ['output is a string', '{"output":"done"}', 'output is not an object (got string)'],
    ['output.output missing', '{"output":{}}', 'output.output is missing'],
    ['output.output is a list', '{"output":{"output":[]}}', 'output.output is not an object (got list)'],
    ['s3_image_urls missing', '{"output":{"output":{}}}', 'output.output.s3_image_urls is missing'],
    ['s3_image_urls is an object', response({ a: 'x' }), 'output.output.s3_image_urls is not a list (got object)'],
    ['s3_image_urls is null', response(null), 'output.output.s3_image_urls is not a list (got null)'],
    [
      'an element is a number',
      response(['s3://b/x.jpg', 7]),
      'output.output.s3_image_urls[1] is not a string (got number)',
    ],
  ];
  it.each(shapes)('rejects a wrong shape: %s', async (_what, content, reason) => {
    const path = await file('response.json', content);
    const error = await rejection(urlsIn(path), InputError);
    expect(error.file).toBe(path);
    expect(error.message).toBe(`${path}: ${reason}; left unchanged`);
  });

  it('rejects invalid JSON with the parser message', async () => {
    const path = await file('response.json', '{"output": }');
    const error = await rejection(urlsIn(path), InputError);
    expect(error.message).toMatch(new RegExp(`^${escapeRegExp(path)}: invalid JSON \\(.+\\); left unchanged$`));
    let parserMessage = '';
    try {
      JSON.parse('{"output": }');
    } catch (e) {
      parserMessage = (e as Error).message;
    }
    expect(error.message).toContain(parserMessage);
  });

  it('rejects an empty file as invalid JSON', async () => {
    const path = await file('response.json', '');
    expect((await rejection(urlsIn(path), InputError)).message).toMatch(/: invalid JSON \(.*\); left unchanged$/);
  });

  it('rejects bytes that are not UTF-8 rather than reading them as U+FFFD inside a URL', async () => {
    const path = await file('response.json', Buffer.from([0x7b, 0xff, 0x7d]));
    expect((await rejection(urlsIn(path), InputError)).message).toBe(`${path}: is not UTF-8 text; left unchanged`);
  });

  it('rejects a response.json that is a directory (not a missing file)', async () => {
    const path = join(dir, 'response.json');
    await mkdir(path);
    expect((await rejection(urlsIn(path), InputError)).message).toBe(`${path}: is not a regular file; left unchanged`);
  });

  it('rejects an unreadable file', async () => {
    const path = await file('response.json', response([]));
    if (unprivileged) await chown(dir, unprivileged.uid, unprivileged.gid); // only the file's mode keeps it out
    await chmod(path, 0o000);
    expect(readResponseJsonUnprivileged(path)).toBe(`InputError: ${path}: cannot be read (EACCES); left unchanged`);
  });
});

describe('readPromptMetadataFile', () => {
  it.each([
    ['0000_european_16_male', 4],
    ['0001_european_20_female', 15],
    ['0004_european_35_male', 3],
  ])('reads the sample of %s (%i images with an s3_url each)', async (actor, count) => {
    const images = await imagesIn(join(SAMPLE, actor, 'training_data', 'prompt_metadata.json'));
    expect(images?.size).toBe(count);
    for (const [filename, image] of images!) {
      expect(image).toEqual({ s3_url: `${ASSETS}/${actor}/${filename}` });
    }
  });

  it('returns null when there is no prompt_metadata.json', async () => {
    expect(await imagesIn(join(dir, 'prompt_metadata.json'))).toBeNull();
  });

  it('returns an empty map when there is no `images`', async () => {
    expect(await imagesIn(await file('p.json', '{"other": 1}'))).toEqual(new Map());
  });

  it('reads s3_url and good, treats null (and an empty s3_url: no URL) as absent, and strips a BOM', async () => {
    const path = await file(
      'p.json',
      `\uFEFF${JSON.stringify({
        images: {
          'a.jpg': { s3_url: 's3://b/a.jpg', good: true, prompt: 'kept elsewhere' },
          'b.jpg': { s3_url: null, good: false },
          'c.jpg': { good: null },
          'd.jpg': { s3_url: '', good: true },
        },
      })}`,
    );
    const images = await imagesIn(path);
    expect(images).toEqual(
      new Map([
        ['a.jpg', { s3_url: 's3://b/a.jpg', good: true }],
        ['b.jpg', { good: false }],
        ['c.jpg', {}],
        ['d.jpg', { good: true }],
      ]),
    );
  });

  // A zod record would drop this key without a word, and with it an image's URL.
  it('keeps an image named __proto__', async () => {
    const path = await file('p.json', '{"images": {"__proto__": {"good": true}}}');
    expect((await imagesIn(path))?.get('__proto__')).toEqual({ good: true });
  });

  const shapes: Array<[what: string, content: string, reason: string]> = [
    ['top level is a list', '[]', 'the top level is not an object (got list)'],
    ['images is a list', '{"images": []}', 'images is not an object (got list)'],
    ['images is a string', '{"images": "a.jpg"}', 'images is not an object (got string)'],
    ['an entry is a string', '{"images": {"a.jpg": "s3://b/a.jpg"}}', 'images["a.jpg"] is not an object (got string)'],
    ['an entry is null', '{"images": {"a.jpg": null}}', 'images["a.jpg"] is not an object (got null)'],
    [
      's3_url is a number',
      '{"images": {"a.jpg": {"s3_url": 5}}}',
      'images["a.jpg"].s3_url is not a string (got number)',
    ],
    [
      'good is a string',
      '{"images": {"a.jpg": {"good": "yes"}}}',
      'images["a.jpg"].good is not true or false (got string)',
    ],
    ['an unsafe filename', '{"images": {"../a.jpg": {}}}', 'images has an unsafe filename "../a.jpg"'],
  ];
  it.each(shapes)('rejects a wrong shape: %s', async (_what, content, reason) => {
    const path = await file('prompt_metadata.json', content);
    const error = await rejection(imagesIn(path), InputError);
    expect(error.file).toBe(path);
    expect(error.message).toBe(`${path}: ${reason}; left unchanged`);
  });

  it('rejects invalid JSON', async () => {
    const path = await file('prompt_metadata.json', '{"images": {,}}');
    expect((await rejection(imagesIn(path), InputError)).message).toMatch(
      new RegExp(`^${escapeRegExp(path)}: invalid JSON \\(.+\\); left unchanged$`),
    );
  });
});

describe('urlsByFilename', () => {
  const FILE = '/data/actors/0000_x/training_data/response.json';

  it('indexes by decoded filename (an https URL is percent-decoded, an s3:// URI is the raw key) and keeps the same URL given twice once', () => {
    const spaced = 'https://b.s3.amazonaws.com/a/x%20y.jpg';
    const map = urlsByFilename([spaced, 's3://b/a/z.jpg', spaced, 's3://b/a/50%_off.jpg'], FILE);
    expect([...map.keys()]).toEqual(['x y.jpg', 'z.jpg', '50%_off.jpg']);
    expect(map.get('x y.jpg')).toEqual({ url: spaced, bucket: 'b', key: 'a/x y.jpg', filename: 'x y.jpg' });
    expect(map.get('50%_off.jpg')).toMatchObject({ key: 'a/50%_off.jpg' });
  });

  it('rejects two different URLs with one filename: neither may be lost', () => {
    const error = thrownBy(() =>
      urlsByFilename([`${ASSETS}/0000_x/0000_x_1.jpg`, 'https://other.s3.amazonaws.com/y/0000_x_1.jpg'], FILE),
    );
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(
      `${FILE}: two different URLs have the filename "0000_x_1.jpg" ` +
        `("${ASSETS}/0000_x/0000_x_1.jpg" and "https://other.s3.amazonaws.com/y/0000_x_1.jpg"), and only one can be kept; left unchanged`,
    );
  });

  it('rejects an unsafe URL, naming the file and the URL', () => {
    const error = thrownBy(() => urlsByFilename(['s3://b/ok.jpg', 'https://b.s3.amazonaws.com/a/..%2Fx'], FILE));
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).file).toBe(FILE);
    expect(error.message).toBe(
      `${FILE}: URL "https://b.s3.amazonaws.com/a/..%2Fx" has an unsafe filename "../x"; left unchanged`,
    );
  });

  it('rejects something that is not a URL', () => {
    expect(() => urlsByFilename(['0000_x_1.jpg'], FILE)).toThrow(
      `${FILE}: URL "0000_x_1.jpg" is not a URL; left unchanged`,
    );
  });
});
