import { describe, expect, it } from 'vitest';
import { isSafeFilename, keyCandidates, parseS3Url, sameObject, UrlError } from '../src/shared/s3-url.js';
import { thrownBy } from './helpers/values.js';

const KEY = 'system_actors/training_data/0000_european_16_male/0000_european_16_male_4.png';
const FILE = '0000_european_16_male_4.png';

describe('parseS3Url accepts every URL form of SPEC §2', () => {
  const cases: Array<[form: string, url: string, bucket: string, key: string, filename: string, region?: string]> = [
    [
      'virtual-hosted with region',
      `https://story-boards-assets.s3.us-west-1.amazonaws.com/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
      'us-west-1',
    ],
    [
      'legacy dash region',
      `https://story-boards-assets.s3-us-west-1.amazonaws.com/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
      'us-west-1',
    ],
    [
      'virtual-hosted without region',
      `https://story-boards-assets.s3.amazonaws.com/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
    ],
    [
      'transfer acceleration',
      `https://story-boards-assets.s3-accelerate.amazonaws.com/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
    ],
    [
      'accelerate dualstack',
      `https://story-boards-assets.s3-accelerate.dualstack.amazonaws.com/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
    ],
    [
      'dualstack with region',
      `https://story-boards-assets.s3.dualstack.us-west-1.amazonaws.com/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
      'us-west-1',
    ],
    [
      'path-style with region',
      `https://s3.us-west-1.amazonaws.com/story-boards-assets/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
      'us-west-1',
    ],
    [
      'path-style, legacy dash region',
      `https://s3-eu-west-1.amazonaws.com/story-boards-assets/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
      'eu-west-1',
    ],
    [
      'path-style dualstack',
      `https://s3.dualstack.ap-south-1.amazonaws.com/story-boards-assets/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
      'ap-south-1',
    ],
    [
      's3-external-1 (us-east-1)',
      `https://story-boards-assets.s3-external-1.amazonaws.com/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
      'us-east-1',
    ],
    [
      'path-style without region',
      `https://s3.amazonaws.com/story-boards-assets/${KEY}`,
      'story-boards-assets',
      KEY,
      FILE,
    ],
    ['s3 scheme', `s3://story-boards-assets/${KEY}`, 'story-boards-assets', KEY, FILE],
    [
      'custom endpoint on loopback (s3rver)',
      'http://127.0.0.1:4568/test-bucket/a/b.jpg',
      'test-bucket',
      'a/b.jpg',
      'b.jpg',
    ],
    ['custom endpoint by name', 'https://minio.local/media/actors/x.webp', 'media', 'actors/x.webp', 'x.webp'],
    [
      'bucket with dots',
      'https://my.dotted.bucket.s3.eu-west-2.amazonaws.com/k/x.jpg',
      'my.dotted.bucket',
      'k/x.jpg',
      'x.jpg',
      'eu-west-2',
    ],
    ['upper-case scheme and host', 'HTTPS://B.S3.AMAZONAWS.COM/k/x.jpg', 'b', 'k/x.jpg', 'x.jpg'],
    ['key at the bucket root', 'https://b.s3.amazonaws.com/x.jpg', 'b', 'x.jpg', 'x.jpg'],
  ];
  it.each(cases)('%s', (_form, url, bucket, key, filename, region) => {
    expect(parseS3Url(url)).toStrictEqual(
      region === undefined ? { url, bucket, key, filename } : { url, bucket, key, filename, region },
    );
  });

  it('drops the query and fragment of a presigned URL, even when the signature holds "/"', () => {
    const url = 'https://b.s3.us-west-1.amazonaws.com/a/x.jpg?X-Amz-Signature=ab%2Fcd/ef&X-Amz-Expires=60#frag';
    expect(parseS3Url(url)).toEqual({ url, bucket: 'b', key: 'a/x.jpg', filename: 'x.jpg', region: 'us-west-1' });
  });

  it('percent-decodes key and filename, and keeps "+" as a plus (S3 does not read it as a space)', () => {
    const loc = parseS3Url('https://b.s3.amazonaws.com/a%20b/caf%C3%A9+1%2B2.jpg');
    expect(loc.key).toBe('a b/café+1+2.jpg');
    expect(loc.filename).toBe('café+1+2.jpg');
  });

  it('keeps raw spaces and non-ASCII letters, which real folders have (SPEC §3 invariant 7)', () => {
    expect(parseS3Url('s3://b/actors/Zoë Smith/Zoë 1.png')).toMatchObject({
      key: 'actors/Zoë Smith/Zoë 1.png',
      filename: 'Zoë 1.png',
    });
  });

  it('reads an s3:// URI as the raw key, as the aws CLI and the console write it (never percent-decoded)', () => {
    expect(parseS3Url('s3://b/sale/50%_off.jpg')).toStrictEqual({
      url: 's3://b/sale/50%_off.jpg',
      bucket: 'b',
      key: 'sale/50%_off.jpg',
      filename: '50%_off.jpg',
    });
    expect(parseS3Url('s3://b/a%20b.jpg').key).toBe('a%20b.jpg');
    expect(parseS3Url('s3://b/a b+c.jpg').key).toBe(parseS3Url('https://b.s3.amazonaws.com/a%20b%2Bc.jpg').key);
    expect(parseS3Url('s3://b/%FF/..%5Cx.jpg')).toMatchObject({ key: '%FF/..%5Cx.jpg', filename: '..%5Cx.jpg' });
  });

  it('keyCandidates: an https "+" may be a space, and either Unicode form may be held; s3:// "+" is a plus', () => {
    expect(keyCandidates(parseS3Url('https://b.s3.amazonaws.com/k/a+b.jpg'))).toEqual(['k/a+b.jpg', 'k/a b.jpg']);
    expect(keyCandidates(parseS3Url('s3://b/k/a+b.jpg'))).toEqual(['k/a+b.jpg']);
    expect(keyCandidates(parseS3Url('https://b.s3.amazonaws.com/k/a%2Bb.jpg')), '%2B is a plus, never a space').toEqual(
      ['k/a+b.jpg'],
    );
    expect(keyCandidates(parseS3Url('https://b.s3.amazonaws.com/k/a%2Bb+c.jpg'))).toEqual([
      'k/a+b+c.jpg',
      'k/a+b c.jpg',
    ]);
    expect(keyCandidates(parseS3Url('https://b.s3.amazonaws.com/k/Zo%C3%AB.jpg'))).toEqual([
      'k/Zoë.jpg',
      'k/Zoe\u0308.jpg',
    ]);
    expect(keyCandidates(parseS3Url('s3://b/k/x.jpg'))).toEqual(['k/x.jpg']);
  });

  it('decodes a path-style bucket segment', () => {
    expect(parseS3Url('http://localhost:9000/my%2Dbucket/x.jpg').bucket).toBe('my-bucket');
  });

  it('reads a host as WHATWG reads the whole URL, however many URLs share it (each host is read once)', () => {
    const hosted = (url: string) => {
      const { bucket, key, region } = parseS3Url(url);
      return { bucket, key, region };
    };
    for (let round = 0; round < 2; round += 1) {
      expect(hosted('https://B.S3.US-WEST-1.AMAZONAWS.COM/k/x.jpg')).toEqual({
        bucket: 'b',
        key: 'k/x.jpg',
        region: 'us-west-1',
      });
      expect(hosted('https://user:pw@b.s3.us-west-1.amazonaws.com:443/k/x.jpg')).toMatchObject({ bucket: 'b' });
      expect(hosted('http://[::1]:9000/b/k/x.jpg')).toEqual({ bucket: 'b', key: 'k/x.jpg', region: undefined });
      // No authority: WHATWG takes the host from the path, as it always did here.
      expect(hosted('https:///b/k.jpg')).toEqual({ bucket: 'b', key: 'k.jpg', region: undefined });
      expect(() => parseS3Url('https:////b/k.jpg')).toThrow(/names no bucket/);
      expect(() => parseS3Url('https://ec2.us-west-1.amazonaws.com/b/k.jpg')).toThrow(/not an S3 endpoint/);
      expect(() => parseS3Url('https://exa mple.com/b/k.jpg')).toThrow(/host cannot be parsed/);
    }
  });
});

describe('parseS3Url rejects, naming the URL and the reason', () => {
  const cases: Array<[what: string, url: string, message: string]> = [
    [
      'ftp scheme',
      'ftp://host/b/x.jpg',
      'URL "ftp://host/b/x.jpg" has an unsupported scheme "ftp:" (expected https:, http: or s3:)',
    ],
    [
      'file scheme',
      'file:///etc/passwd',
      'URL "file:///etc/passwd" has an unsupported scheme "file:" (expected https:, http: or s3:)',
    ],
    [
      'data scheme',
      'data:image/png;base64,AAAA',
      'URL "data:image/png;base64,AAAA" has an unsupported scheme "data:" (expected https:, http: or s3:)',
    ],
    [
      'javascript scheme',
      'javascript:alert(1)',
      'URL "javascript:alert(1)" has an unsupported scheme "javascript:" (expected https:, http: or s3:)',
    ],
    ['plain text', 'not a url', 'URL "not a url" is not a URL'],
    ['empty string', '', 'URL "" is not a URL'],
    ['a bare path', '/data/x.jpg', 'URL "/data/x.jpg" is not a URL'],
    [
      'https without //',
      'https:b.s3.amazonaws.com/x.jpg',
      'URL "https:b.s3.amazonaws.com/x.jpg" is not a URL (expected "https://" at the start)',
    ],
    [
      'a host that cannot be parsed',
      'https://exa mple.com/b/x.jpg',
      'URL "https://exa mple.com/b/x.jpg" is not a URL (its host cannot be parsed)',
    ],
    ['s3 without bucket', 's3:///x.jpg', 'URL "s3:///x.jpg" names no bucket'],
    [
      'path-style without bucket',
      'https://s3.us-west-1.amazonaws.com/',
      'URL "https://s3.us-west-1.amazonaws.com/" names no bucket',
    ],
    [
      'custom endpoint without bucket',
      'http://127.0.0.1:4568//x.jpg',
      'URL "http://127.0.0.1:4568//x.jpg" names no bucket',
    ],
    [
      'invalid bucket name',
      'http://127.0.0.1:4568/a%2Fb/x.jpg',
      'URL "http://127.0.0.1:4568/a%2Fb/x.jpg" has an invalid bucket name "a/b"',
    ],
    [
      'non-S3 AWS host',
      'https://ec2.us-west-1.amazonaws.com/b/x.jpg',
      'URL "https://ec2.us-west-1.amazonaws.com/b/x.jpg" has host "ec2.us-west-1.amazonaws.com", which is not an S3 endpoint',
    ],
    [
      'empty key (virtual-hosted)',
      'https://b.s3.amazonaws.com/',
      'URL "https://b.s3.amazonaws.com/" names no object (the key is empty)',
    ],
    [
      'no path at all',
      'https://b.s3.amazonaws.com?x=1',
      'URL "https://b.s3.amazonaws.com?x=1" names no object (the key is empty)',
    ],
    ['bucket only (s3)', 's3://b', 'URL "s3://b" names no object (the key is empty)'],
    [
      'bucket only (path-style)',
      'https://s3.amazonaws.com/b',
      'URL "https://s3.amazonaws.com/b" names no object (the key is empty)',
    ],
    ['key ending in /', 's3://b/folder/', 'URL "s3://b/folder/" names a folder, not an object (the key ends with "/")'],
    [
      'stray %',
      'https://b.s3.amazonaws.com/100%.jpg',
      'URL "https://b.s3.amazonaws.com/100%.jpg" has invalid percent-encoding (a "%" not followed by two hex digits)',
    ],
    [
      'escape that is not UTF-8',
      'https://b.s3.amazonaws.com/%FF.jpg',
      'URL "https://b.s3.amazonaws.com/%FF.jpg" has invalid percent-encoding (the escapes are not UTF-8)',
    ],
    ['filename ".."', 's3://b/a/..', 'URL "s3://b/a/.." has an unsafe filename ".."'],
    [
      'filename "."',
      'https://b.s3.amazonaws.com/a/.',
      'URL "https://b.s3.amazonaws.com/a/." has an unsafe filename "."',
    ],
    [
      'encoded ".." (%2e%2e)',
      'https://b.s3.amazonaws.com/a/%2e%2e',
      'URL "https://b.s3.amazonaws.com/a/%2e%2e" has an unsafe filename ".."',
    ],
    [
      '"/" in the filename (%2F)',
      'https://b.s3.amazonaws.com/a/..%2Fx',
      'URL "https://b.s3.amazonaws.com/a/..%2Fx" has an unsafe filename "../x"',
    ],
    [
      '"\\" in the filename (%5C)',
      'https://b.s3.amazonaws.com/a/..%5Cx.jpg',
      'URL "https://b.s3.amazonaws.com/a/..%5Cx.jpg" has an unsafe filename "..\\\\x.jpg"',
    ],
    [
      '"\\" in an s3:// filename',
      's3://b/a/..\\x.jpg',
      'URL "s3://b/a/..\\\\x.jpg" contains a backslash, which browsers read as "/"',
    ],
    [
      'NUL in the filename (%00)',
      'https://b.s3.amazonaws.com/a/x%00.jpg',
      'URL "https://b.s3.amazonaws.com/a/x%00.jpg" has an unsafe filename "x\\u0000.jpg"',
    ],
    [
      '".." segment mid-key',
      'https://b.s3.amazonaws.com/a/../x.jpg',
      'URL "https://b.s3.amazonaws.com/a/../x.jpg" has a "." or ".." segment in its key "a/../x.jpg"',
    ],
    [
      'encoded ".." segment mid-key',
      'https://b.s3.amazonaws.com/a/%2E%2E/x.jpg',
      'URL "https://b.s3.amazonaws.com/a/%2E%2E/x.jpg" has a "." or ".." segment in its key "a/../x.jpg"',
    ],
    [
      '".." segment mid-key (s3://)',
      's3://b/a/../x.jpg',
      'URL "s3://b/a/../x.jpg" has a "." or ".." segment in its key "a/../x.jpg"',
    ],
    ['"." segment mid-key', 's3://b/./x.jpg', 'URL "s3://b/./x.jpg" has a "." or ".." segment in its key "./x.jpg"'],
    [
      '".." hidden by %2F mid-key',
      'https://b.s3.amazonaws.com/a%2F..%2Fb/x.jpg',
      'URL "https://b.s3.amazonaws.com/a%2F..%2Fb/x.jpg" has a "." or ".." segment in its key "a/../b/x.jpg"',
    ],
    [
      'NUL mid-key',
      'https://b.s3.amazonaws.com/a%00/x.jpg',
      'URL "https://b.s3.amazonaws.com/a%00/x.jpg" has a NUL character in its key',
    ],
    [
      'raw backslash',
      'https://b.s3.amazonaws.com\\evil/x.jpg',
      'URL "https://b.s3.amazonaws.com\\\\evil/x.jpg" contains a backslash, which browsers read as "/"',
    ],
    [
      'newline (URL would drop it)',
      'https://b.s3.amazonaws.com/a/.\n./x.jpg',
      'URL "https://b.s3.amazonaws.com/a/.\\n./x.jpg" contains a control character',
    ],
    ['surrounding whitespace', ' s3://b/x.jpg', 'URL " s3://b/x.jpg" has leading or trailing whitespace'],
  ];
  it.each(cases)('%s', (_what, url, message) => {
    const error = thrownBy(() => parseS3Url(url));
    expect(error).toBeInstanceOf(UrlError);
    expect(error.message).toBe(message);
    expect((error as UrlError).url).toBe(url);
  });

  it('shortens a huge URL in the message so a data: URI does not flood the log', () => {
    const url = `data:image/png;base64,${'A'.repeat(10_000)}`;
    const { message } = thrownBy(() => parseS3Url(url));
    expect(message).toMatch(/^URL "data:image\/png;base64,A+…" has an unsupported scheme/);
    expect(message.length).toBeLessThan(400);
  });
});

describe('isSafeFilename', () => {
  it.each(['0000_european_16_male_0.jpg', 'a b.png', 'Zoë.webp', '...', '..x', '.hidden.jpg'])('accepts %j', (name) => {
    expect(isSafeFilename(name)).toBe(true);
  });
  it.each(['', '.', '..', 'a/b.jpg', '../x', 'a\\b.jpg', 'x\0.jpg', '/'])('rejects %j', (name) => {
    expect(isSafeFilename(name)).toBe(false);
  });
});

describe('sameObject: one object in any URL form, never two stores', () => {
  const key = 'system_actors/training_data/0000_a/x 1.jpg';
  it.each([
    ['s3://', `s3://b/${key}`],
    [
      'another region, virtual-hosted',
      'https://b.s3.eu-west-1.amazonaws.com/system_actors/training_data/0000_a/x%201.jpg',
    ],
    [
      'path-style, presigned',
      'https://s3.us-west-1.amazonaws.com/b/system_actors/training_data/0000_a/x%201.jpg?X-Amz-Signature=1',
    ],
  ])('%s is the same object as the virtual-hosted URL', (_form, url) => {
    expect(sameObject(url, 'https://b.s3.us-west-1.amazonaws.com/system_actors/training_data/0000_a/x%201.jpg')).toBe(
      true,
    );
  });

  it.each([
    ['a MinIO host', 'http://minio.internal:9000/b/system_actors/training_data/0000_a/x%201.jpg'],
    ['a Google Cloud Storage host', 'https://storage.googleapis.com/b/system_actors/training_data/0000_a/x%201.jpg'],
    ['the China partition', 'https://b.s3.cn-north-1.amazonaws.com.cn/system_actors/training_data/0000_a/x%201.jpg'],
    ['another bucket', `s3://c/${key}`],
  ])('%s with the same bucket and key is another object', (_store, url) => {
    expect(sameObject(url, `s3://b/${key}`)).toBe(false);
  });

  it('tells two ports of one host apart', () => {
    expect(sameObject('http://h:9000/b/k.jpg', 'http://h:9001/b/k.jpg')).toBe(false);
    expect(sameObject('http://h:9000/b/k.jpg', 'https://h:9000/b/k.jpg?x=1')).toBe(true);
  });
});
