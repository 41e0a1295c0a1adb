/**
 * For `npm run bench:remote -- --latency MS`: an in-memory S3 endpoint on loopback that models the link,
 * so the listing strategy is measured rather than s3rver's folder walk. It serves, path-style and without
 * checking signatures, from a fixed object list:
 *
 * - ListObjectsV2 and V1 (prefix, delimiter, start-after / marker, continuation-token, max-keys ≤ 1000,
 *   encoding-type=url), in UTF-8 byte order as S3 lists;
 * - HeadObject and HeadBucket.
 *
 * Every response waits `latencyMs` (the round trip), and every listing page `pageMs` more (S3's own time).
 * Requests are counted by kind.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeObject {
  key: string;
  size: number;
  /** The MD5 in hex: the ETag of a single-part object. */
  md5: string;
}

export interface FakeS3Options {
  latencyMs: number;
  pageMs: number;
}

export interface FakeS3 {
  endpoint: string;
  /** Requests by kind since the last `reset`. */
  counts: { list: number; head: number; other: number };
  reset(): void;
  close(): Promise<void>;
}

const LAST_MODIFIED = new Date('2026-01-01T00:00:00Z');

export async function startFakeS3(bucket: string, objects: FakeObject[], options: FakeS3Options): Promise<FakeS3> {
  const sorted = [...objects].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  const byKey = new Map(sorted.map((object) => [object.key, object]));
  const counts = { list: 0, head: 0, other: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const [, bucketName = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const isList = req.method === 'GET' && key === '' && !url.searchParams.has('location');
    counts[isList ? 'list' : req.method === 'HEAD' ? 'head' : 'other'] += 1;
    const delay = options.latencyMs + (isList ? options.pageMs : 0);
    req.resume();
    setTimeout(() => answer(req, res, url, bucketName, key, isList), delay);
  });

  function answer(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    bucketName: string,
    key: string,
    isList: boolean,
  ): void {
    if (decodeURIComponent(bucketName) !== bucket) return error(res, 404, 'NoSuchBucket');
    if (isList) return xml(res, listPage(sorted, url.searchParams));
    if (req.method === 'GET' && url.searchParams.has('location')) {
      return xml(
        res,
        '<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">us-west-1</LocationConstraint>',
      );
    }
    if (req.method === 'HEAD' && key === '')
      return void res.writeHead(200, { 'x-amz-bucket-region': 'us-west-1' }).end();
    const object = byKey.get(key);
    if (req.method !== 'HEAD') return error(res, 501, 'NotImplemented');
    if (!object) return void res.writeHead(404).end();
    res
      .writeHead(200, {
        'content-length': object.size,
        etag: `"${object.md5}"`,
        'last-modified': LAST_MODIFIED.toUTCString(),
      })
      .end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    reset() {
      counts.list = counts.head = counts.other = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One page of ListObjectsV2 (`list-type=2`) or V1 over `sorted`. */
function listPage(sorted: FakeObject[], params: URLSearchParams): string {
  const v2 = params.get('list-type') === '2';
  const prefix = params.get('prefix') ?? '';
  const delimiter = params.get('delimiter') ?? '';
  const maxKeys = Math.min(Number(params.get('max-keys') ?? 1000), 1000);
  const urlEncoded = params.get('encoding-type') === 'url';
  // A continuation token here is the last key returned, base64: opaque to the client, as S3's are.
  const token = params.get('continuation-token');
  const after = v2
    ? token !== null
      ? Buffer.from(token, 'base64').toString('utf8')
      : (params.get('start-after') ?? '')
    : (params.get('marker') ?? '');
  let index = firstAfter(sorted, after);
  const contents: FakeObject[] = [];
  const commonPrefixes: string[] = [];
  let last = '';
  while (index < sorted.length && contents.length + commonPrefixes.length < maxKeys) {
    const object = sorted[index]!;
    if (!object.key.startsWith(prefix)) {
      if (Buffer.compare(Buffer.from(object.key), Buffer.from(prefix)) > 0) break;
      index += 1;
      continue;
    }
    const cut = delimiter === '' ? -1 : object.key.indexOf(delimiter, prefix.length);
    if (cut === -1) {
      contents.push(object);
      last = object.key;
      index += 1;
      continue;
    }
    const common = object.key.slice(0, cut + delimiter.length);
    commonPrefixes.push(common);
    last = common;
    // Skip every key under this common prefix.
    while (index < sorted.length && sorted[index]!.key.startsWith(common)) index += 1;
  }
  const truncated = index < sorted.length && sorted[index]!.key.startsWith(prefix);
  const encode = (text: string) => escapeXml(urlEncoded ? encodeURIComponent(text).replace(/%2F/g, '/') : text);
  const parts = [
    '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    `<Prefix>${encode(prefix)}</Prefix><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>`,
    urlEncoded ? '<EncodingType>url</EncodingType>' : '',
    delimiter ? `<Delimiter>${encode(delimiter)}</Delimiter>` : '',
    v2 ? `<KeyCount>${contents.length + commonPrefixes.length}</KeyCount>` : '',
    v2 && truncated ? `<NextContinuationToken>${Buffer.from(last).toString('base64')}</NextContinuationToken>` : '',
    !v2 && truncated ? `<NextMarker>${encode(last)}</NextMarker>` : '',
    ...contents.map(
      (o) =>
        `<Contents><Key>${encode(o.key)}</Key><LastModified>${LAST_MODIFIED.toISOString()}</LastModified><ETag>&quot;${o.md5}&quot;</ETag><Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    ),
    ...commonPrefixes.map((p) => `<CommonPrefixes><Prefix>${encode(p)}</Prefix></CommonPrefixes>`),
    '</ListBucketResult>',
  ];
  return parts.join('');
}

/** The index of the first key after `after` in UTF-8 byte order (binary search). */
function firstAfter(sorted: FakeObject[], after: string): number {
  if (after === '') return 0;
  const target = Buffer.from(after);
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (Buffer.compare(Buffer.from(sorted[middle]!.key), target) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

function xml(res: ServerResponse, body: string, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
}

function error(res: ServerResponse, status: number, code: string): void {
  xml(
    res,
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`,
    status,
  );
}

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}
