/**
 * An AWS-behaviour proxy in front of s3rver (path-style requests): what AWS S3 does and s3rver does not.
 *
 * - Each bucket may have a home region: a request signed for another region (the credential scope of its
 *   Authorization header) gets `301 PermanentRedirect` with `x-amz-bucket-region`, or `400
 *   AuthorizationHeaderMalformed` naming the region in its body (a HEAD has no body: HeadObject's 400 says
 *   nothing, HeadBucket's carries the header, as AWS does), or a 400 that names no region at all.
 * - A bucket may deny `s3:ListBucket`: ListObjectsV2 gets 403 AccessDenied, and a missing key 403, not 404.
 * - `EncodingType=url` listings (which s3rver ignores) come URL-encoded as AWS encodes them (a space as `+`).
 * - The next listing(s) may say `IsTruncated` without a continuation token.
 * - Every request is recorded with its kind, the region it was signed for and the status it got.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll } from 'vitest';

export type RequestKind = 'list' | 'head' | 'headBucket' | 'get' | 'put' | 'other';

export interface AwsRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  kind: RequestKind;
  bucket: string;
  /** The decoded key; '' for a bucket request. */
  key: string;
  /** The region of the request's SigV4 credential scope. */
  signedFor: string | undefined;
  /** The status the client got (set once answered). */
  status?: number;
}

/** How a bucket answers a request signed for another region. */
export type WrongRegionAnswer = 'redirect' | 'malformed' | 'malformed-untold';

export interface AwsProxy {
  endpoint: string;
  requests: AwsRequest[];
  /** Requests of `kind` so far (optionally only those that got `status`). */
  count(kind: RequestKind, status?: number): number;
  homeRegion(bucket: string, region: string, answer?: WrongRegionAnswer): void;
  /** The bucket denies s3:ListBucket: LIST gets 403, a missing key 403. */
  denyList(bucket: string): void;
  /** The next `times` listings say IsTruncated=true and give no continuation token. */
  truncateWithoutToken(times?: number): void;
  /** Requests are recorded but not answered until the returned release is called. */
  hold(): () => void;
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const errorXml = (code: string, message: string, extra = '') =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>aws-proxy</RequestId></Error>`;

/** Starts the proxy on 127.0.0.1, forwarding to `upstream` (s3rver's `http://127.0.0.1:<port>`). */
export async function startAwsProxy(upstream: string): Promise<AwsProxy> {
  const target = new URL(upstream);
  const requests: AwsRequest[] = [];
  const homes = new Map<string, { region: string; answer: WrongRegionAnswer }>();
  const noList = new Set<string>();
  let truncations = 0;

  let held: Array<() => void> | undefined;

  const server = http.createServer((req, res) => {
    const seen = describe(req);
    requests.push(seen);
    if (held) held.push(() => handle(req, res, seen));
    else handle(req, res, seen);
  });

  function handle(req: IncomingMessage, res: ServerResponse, seen: AwsRequest): void {
    const answer = (status: number, headers: Record<string, string>, body = '') => {
      seen.status = status;
      req.resume();
      req.on('end', () => {
        const payload = req.method === 'HEAD' ? '' : body;
        res.writeHead(status, {
          ...headers,
          'content-type': 'application/xml',
          'content-length': String(Buffer.byteLength(payload)),
        });
        res.end(payload);
      });
    };
    const home = homes.get(seen.bucket);
    if (home && seen.signedFor !== home.region) {
      const told = { 'x-amz-bucket-region': home.region };
      if (home.answer === 'redirect') {
        const xml = errorXml(
          'PermanentRedirect',
          'The bucket you are attempting to access must be addressed using the specified endpoint.',
          `<Endpoint>${seen.bucket}.s3.${home.region}.amazonaws.com</Endpoint><Bucket>${seen.bucket}</Bucket>`,
        );
        return answer(301, told, xml);
      }
      const named = home.answer === 'malformed';
      const xml = errorXml(
        'AuthorizationHeaderMalformed',
        `The authorization header is malformed; the region '${seen.signedFor}' is wrong${named ? `; expecting '${home.region}'` : ''}`,
        named ? `<Region>${home.region}</Region>` : '',
      );
      return answer(400, named && seen.kind === 'headBucket' ? told : {}, xml);
    }
    if (noList.has(seen.bucket) && (seen.kind === 'list' || seen.kind === 'headBucket')) {
      return answer(403, {}, errorXml('AccessDenied', 'Access Denied'));
    }
    forward(req, res, seen);
  }

  function forward(req: IncomingMessage, res: ServerResponse, seen: AwsRequest): void {
    const upstreamReq = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        let status = upstreamRes.statusCode ?? 502;
        const chunks: Buffer[] = [];
        upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upstreamRes.on('end', () => {
          let body = Buffer.concat(chunks);
          const headers = { ...upstreamRes.headers };
          if (status === 404 && noList.has(seen.bucket)) {
            // Without s3:ListBucket, S3 does not tell a missing key from a denied one.
            status = 403;
            body = Buffer.from(req.method === 'HEAD' ? '' : errorXml('AccessDenied', 'Access Denied'));
          } else if (seen.kind === 'list' && status === 200) {
            let xml = body.toString('utf8');
            if (/[?&]encoding-type=url(?:&|$)/.test(req.url ?? '')) xml = urlEncodeListing(xml);
            if (truncations > 0) {
              truncations -= 1;
              xml = xml
                .replace(/<IsTruncated>false<\/IsTruncated>/, '<IsTruncated>true</IsTruncated>')
                .replace(/<NextContinuationToken>[\s\S]*?<\/NextContinuationToken>/, '');
            }
            body = Buffer.from(xml);
          }
          seen.status = status;
          headers['content-length'] = String(body.length);
          res.writeHead(status, headers);
          res.end(req.method === 'HEAD' ? undefined : body);
        });
      },
    );
    upstreamReq.on('error', () => res.socket?.destroy());
    req.pipe(upstreamReq);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const proxy: AwsProxy = {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    count: (kind, status) =>
      requests.filter((r) => r.kind === kind && (status === undefined || r.status === status)).length,
    homeRegion(bucket, region, answer = 'redirect') {
      homes.set(bucket, { region, answer });
    },
    denyList(bucket) {
      noList.add(bucket);
    },
    truncateWithoutToken(times = 1) {
      truncations += times;
    },
    hold() {
      held ??= [];
      return () => {
        for (const go of held?.splice(0) ?? []) go();
        held = undefined;
      };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  cleanups.push(() => proxy.close().catch(() => undefined));
  return proxy;
}

function describe(req: IncomingMessage): AwsRequest {
  const url = req.url ?? '/';
  const method = req.method ?? 'GET';
  const [path, query = ''] = url.split('?', 2) as [string, string?];
  const [, bucket = '', ...rest] = path.split('/');
  const key = decodeURIComponent(rest.join('/'));
  const signedFor = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(req.headers.authorization ?? '')?.[1];
  let kind: RequestKind = 'other';
  if (method === 'GET' && key === '' && /(?:^|&)list-type=2(?:&|$)/.test(query)) kind = 'list';
  else if (method === 'HEAD') kind = key === '' ? 'headBucket' : 'head';
  else if (method === 'GET' && key !== '') kind = 'get';
  else if ((method === 'PUT' || method === 'POST') && key !== '') kind = 'put';
  return { method, url, kind, bucket, key, signedFor };
}

/** A listing as AWS sends it for `EncodingType=url`: keys and prefixes form-encoded, and the type named. */
function urlEncodeListing(xml: string): string {
  const encode = (text: string) => encodeURIComponent(unescapeXml(text)).replace(/%2F/g, '/').replace(/%20/g, '+');
  return xml
    .replace(
      /<(Key|Prefix|StartAfter)>([\s\S]*?)<\/\1>/g,
      (_, tag: string, text: string) => `<${tag}>${encode(text)}</${tag}>`,
    )
    .replace(/(<ListBucketResult[^>]*>)/, '$1<EncodingType>url</EncodingType>');
}

function unescapeXml(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(parseInt(dec, 10)))
    .replace(/&amp;/g, '&');
}
