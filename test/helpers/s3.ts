/**
 * A real S3-compatible server on loopback (s3rver, port 0, in a temp folder), clients for it, and a
 * fault-injecting HTTP proxy to put between the two: HTTP 500, 503 SlowDown, a reset connection, a
 * stalled response, a body cut off mid-transfer, and listings whose ETags are rewritten (s3rver never
 * returns S3's multipart `…-N` form). The proxy also plays the AWS behaviours s3rver lacks: SSE-KMS
 * objects (an ETag that is not the MD5), conditional writes (`If-None-Match` / `If-Match`, 412), or a
 * store that refuses them (501), and full-object CRC64NVME checksums kept and returned.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll } from 'vitest';
import { S3RVER_CREDENTIALS, startLocalS3 } from '../../demo/s3rver.js';
import { createS3, type S3Access, type S3Options } from '../../src/s3/client.js';

/** s3rver's built-in account: requests signed with anything else get InvalidAccessKeyId. */
export const TEST_CREDENTIALS = S3RVER_CREDENTIALS;

export interface TestS3Server {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Starts s3rver on 127.0.0.1, port 0, with `buckets` created. Closed after the file's tests at the latest. */
export async function startS3Server(buckets: string[] = ['bucket']): Promise<TestS3Server> {
  const server = await startLocalS3(buckets);
  cleanups.push(server.close);
  return server;
}

/**
 * A client for a test server (undefined: from the environment): path-style, s3rver's credentials, 3 attempts,
 * and the production inactivity timeout (30 s): s3rver shares the test's process and cores, so a healthy
 * request, a 20 MiB upload included, may pause for seconds on a loaded machine. A test of a stalled response
 * passes its own shorter `requestTimeoutMs`.
 */
export function testS3(endpoint: string | undefined, options: S3Options = {}): S3Access {
  const s3 = createS3({
    endpoint,
    forcePathStyle: true,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 3,
    requestTimeoutMs: 30_000,
    ...options,
  });
  cleanups.push(() => s3.close());
  return s3;
}

/** Puts an object directly (no MD5 metadata unless given), bypassing the code under test. */
export async function putObject(
  s3: S3Access,
  bucket: string,
  key: string,
  body: string | Buffer,
  metadata?: Record<string, string>,
): Promise<void> {
  await s3.run(() =>
    s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body), Metadata: metadata })),
  );
}

/** What the proxy does to one request instead of forwarding it plainly. */
export type Fault =
  | 'http500' // 500 InternalError
  | 'slowDown' // 503 SlowDown
  | 'reset' // the connection is destroyed before any response
  | 'stall' // the request is accepted and never answered
  | 'truncate'; // forwarded, but the response body is cut off halfway

export interface ProxyRequest {
  method: string;
  url: string;
  fault?: Fault;
  /** The write condition it carried (`If-None-Match: *`, `If-Match: "…"`). */
  condition?: string;
  /** The status the proxy answered with (unset for a request never answered). */
  status?: number;
}

/** What an S3 request does, from its method and query. */
export type RequestKind =
  | 'list'
  | 'head'
  | 'get'
  | 'put'
  | 'create'
  | 'part'
  | 'complete'
  | 'abort'
  | 'delete'
  | 'other';

export function kindOf({ method, url }: ProxyRequest): RequestKind {
  const query = url.includes('?') ? url.slice(url.indexOf('?')) : '';
  if (method === 'GET') return /[?&]list-type=/.test(query) ? 'list' : 'get';
  if (method === 'HEAD') return 'head';
  if (method === 'PUT') return /[?&]partNumber=/.test(query) ? 'part' : 'put';
  if (method === 'POST')
    return /[?&]uploads(=|&|$)/.test(query) ? 'create' : /[?&]uploadId=/.test(query) ? 'complete' : 'other';
  if (method === 'DELETE') return /[?&]uploadId=/.test(query) ? 'abort' : 'delete';
  return 'other';
}

/** The ETag the proxy gives a KMS-marked object: 32 hex digits that are not its MD5. */
export function kmsEtag(md5: string): string {
  return createHash('md5').update(`kms:${md5}`).digest('hex');
}

export interface FaultProxy {
  endpoint: string;
  /** Every request seen, in order, with the fault it got. */
  requests: ProxyRequest[];
  /**
   * Applies `fault` to the next `times` requests that `match` (default: all), then forwards again.
   * `times: Infinity` makes the failure persistent.
   */
  inject(fault: Fault, times: number, match?: (request: ProxyRequest) => boolean): void;
  /**
   * Rewrites ETags as S3 would give them for multipart objects: in listings, and in the `ETag` header of
   * HEAD and GET. `etagFor(key)` returns the new (unquoted) ETag, or undefined to keep it.
   */
  rewriteEtags(etagFor: (key: string) => string | undefined): void;
  /** Holds every request that `match` (unanswered, its body unread) until `release`, then forwards them. */
  hold(match: (request: ProxyRequest) => boolean): { release(): void };
  /**
   * Plays SSE-KMS for the keys `match` says: their ETag becomes {@link kmsEtag} of s3rver's (in listings, HEAD,
   * GET, PUT and CompleteMultipartUpload), and HEAD, GET and PUT answer `x-amz-server-side-encryption: aws:kms`.
   */
  kms(match: (key: string) => boolean): void;
  /** Answers 501 NotImplemented to every conditional write, as a store without them does (default: enforced, 412). */
  refuseConditionalWrites(): void;
  /** Answers 501 NotImplemented to every write carrying a CRC64NVME checksum; `naming` adds `<Header>` as S3 does. */
  refuseChecksums(naming: boolean): void;
  /** Requests seen of one kind. */
  count(kind: RequestKind): number;
  close(): Promise<void>;
}

const ERROR_XML = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>proxy</RequestId></Error>`;

/** Starts a proxy on 127.0.0.1 that forwards to `upstream` (an `http://127.0.0.1:<port>` endpoint). */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const plans: Array<{ fault: Fault; remaining: number; match: (request: ProxyRequest) => boolean }> = [];
  const requests: ProxyRequest[] = [];
  let etagFor: ((key: string) => string | undefined) | undefined;
  let holding: { match: (request: ProxyRequest) => boolean; waiting: Array<() => void> } | undefined;
  let kmsKeys: ((key: string) => boolean) | undefined;
  let refusingConditions = false;
  let refusingChecksums: { naming: boolean } | undefined;
  /** key → the full-object CRC64NVME its last write sent, as S3 keeps it. */
  const checksums = new Map<string, string>();

  const server = http.createServer((req, res) => {
    const seen: ProxyRequest = { method: req.method ?? 'GET', url: req.url ?? '/' };
    requests.push(seen);
    if (holding?.match(seen))
      return void holding.waiting.push(
        () => void checkCondition(req, res, seen).then((ok) => ok && forward(req, res, false, seen)),
      );
    const plan = plans.find((p) => p.remaining > 0 && p.match(seen));
    if (plan) {
      plan.remaining -= 1;
      seen.fault = plan.fault;
    }
    switch (seen.fault) {
      case 'http500':
        return drain(req, () =>
          reply(res, 500, ERROR_XML('InternalError', 'We encountered an internal error. Please try again.')),
        );
      case 'slowDown':
        return drain(req, () => reply(res, 503, ERROR_XML('SlowDown', 'Please reduce your request rate.')));
      case 'reset':
        return void req.socket.destroy();
      case 'stall':
        return void req.resume(); // read the body, answer never
      default:
        return void checkCondition(req, res, seen).then(
          (ok) => ok && forward(req, res, seen.fault === 'truncate', seen),
        );
    }
  });

  /**
   * S3's conditional writes, which s3rver ignores: the object as the client would see it now is HEADed
   * upstream (anonymously: s3rver allows it) and the condition checked. False when the request was answered.
   */
  async function checkCondition(req: IncomingMessage, res: ServerResponse, seen: ProxyRequest): Promise<boolean> {
    const kind = kindOf(seen);
    const ifNoneMatch = req.headers['if-none-match'];
    const ifMatch = req.headers['if-match'];
    if ((kind === 'put' || kind === 'complete') && ifNoneMatch !== undefined)
      seen.condition = `If-None-Match: ${ifNoneMatch}`;
    else if ((kind === 'put' || kind === 'complete') && ifMatch !== undefined) seen.condition = `If-Match: ${ifMatch}`;
    const refuse = (status: number, code: string, message: string, extra = '') =>
      void drain(req, () => reply(res, status, ERROR_XML(code, message).replace('</Error>', `${extra}</Error>`), seen));
    if (
      refusingChecksums &&
      ['put', 'part', 'complete'].includes(kind) &&
      req.headers['x-amz-checksum-crc64nvme'] !== undefined
    ) {
      const header = refusingChecksums.naming ? '<Header>x-amz-checksum-crc64nvme</Header>' : '';
      return (
        refuse(501, 'NotImplemented', 'A header you provided implies functionality that is not implemented', header),
        false
      );
    }
    if (seen.condition === undefined) return true;
    if (refusingConditions)
      return (
        refuse(501, 'NotImplemented', 'A header you provided implies functionality that is not implemented'), false
      );
    const current = await headUpstream(pathOf(req.url ?? '/'));
    const key = keyOfPath(req.url ?? '/');
    const etag = current === undefined ? undefined : viewEtag(key, current);
    const failed =
      ifNoneMatch !== undefined
        ? ifNoneMatch.trim() === '*' && etag !== undefined
        : etag !== undefined && bare(ifMatch!) !== etag;
    if (failed)
      return (
        refuse(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'), false
      );
    if (ifMatch !== undefined && etag === undefined)
      return (refuse(404, 'NoSuchKey', 'The specified key does not exist.'), false);
    return true;
  }

  /** The ETag (unquoted) s3rver holds at `path`, or undefined when there is no object. */
  function headUpstream(path: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const head = http.request({ host: target.hostname, port: target.port, method: 'HEAD', path }, (response) => {
        response.resume();
        resolve(response.statusCode === 200 ? bare(String(response.headers.etag ?? '')) : undefined);
      });
      head.on('error', reject);
      head.end();
    });
  }

  /** The ETag a client sees for `key`: rewritten, or made a KMS one, else s3rver's. */
  function viewEtag(key: string, upstream: string): string {
    return etagFor?.(key) ?? (kmsKeys?.(key) ? kmsEtag(upstream) : upstream);
  }

  function forward(req: IncomingMessage, res: ServerResponse, truncate: boolean, seen?: ProxyRequest): void {
    const path = req.url ?? '/';
    const kind = seen ? kindOf(seen) : kindOf({ method: req.method ?? 'GET', url: path });
    const key = keyOfPath(path);
    const sentChecksum = req.headers['x-amz-checksum-crc64nvme'];
    const upstreamReq = http.request(
      { host: target.hostname, port: target.port, method: req.method, path, headers: req.headers },
      (upstreamRes) => {
        const status = upstreamRes.statusCode ?? 502;
        if (seen) seen.status = status;
        const headers = { ...upstreamRes.headers };
        if (status < 300) keepChecksum(kind, key, typeof sentChecksum === 'string' ? sentChecksum : undefined);
        if (kind !== 'list' && kind !== 'complete' && headers.etag !== undefined)
          headers.etag = `"${viewEtag(key, bare(headers.etag))}"`;
        if (kmsKeys?.(key) && ['head', 'get', 'put', 'complete'].includes(kind) && status < 300)
          headers['x-amz-server-side-encryption'] = 'aws:kms';
        const checksum = checksums.get(key);
        if (
          (kind === 'head' || kind === 'get') &&
          checksum &&
          String(req.headers['x-amz-checksum-mode'] ?? '').toUpperCase() === 'ENABLED'
        ) {
          headers['x-amz-checksum-crc64nvme'] = checksum;
          headers['x-amz-checksum-type'] = 'FULL_OBJECT';
        }
        const rewrite =
          (kind === 'list' && (etagFor !== undefined || kmsKeys !== undefined)) ||
          (kind === 'complete' && kmsKeys?.(key));
        if (!truncate && !rewrite) {
          res.writeHead(status, headers);
          upstreamRes.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upstreamRes.on('end', () => {
          let body = Buffer.concat(chunks);
          if (kind === 'list' && rewrite) body = Buffer.from(rewriteEtags(body.toString('utf8'), viewEtag));
          if (kind === 'complete' && rewrite)
            body = Buffer.from(
              body
                .toString('utf8')
                .replace(
                  /<ETag>(?:&quot;|")?([0-9a-f]{32})(?:&quot;|")?<\/ETag>/,
                  (_, etag: string) => `<ETag>&quot;${kmsEtag(etag)}&quot;</ETag>`,
                ),
            );
          res.writeHead(status, { ...headers, 'content-length': String(body.length) });
          if (!truncate) return void res.end(body);
          res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
        });
      },
    );
    upstreamReq.on('error', () => res.socket?.destroy());
    req.pipe(upstreamReq);
  }

  /** What S3 keeps of a write's checksum: the one a PUT or CompleteMultipartUpload sent, none after a plain PUT. */
  function keepChecksum(kind: RequestKind, key: string, sent: string | undefined): void {
    if (kind !== 'put' && kind !== 'complete' && kind !== 'delete') return;
    if (sent !== undefined && kind !== 'delete') checksums.set(key, sent);
    else checksums.delete(key);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const proxy: FaultProxy = {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    inject(fault, times, match = () => true) {
      plans.push({ fault, remaining: times, match });
    },
    hold(match) {
      const held = { match, waiting: [] as Array<() => void> };
      holding = held;
      return {
        release() {
          if (holding === held) holding = undefined;
          for (const go of held.waiting.splice(0)) go();
        },
      };
    },
    rewriteEtags(rewrite) {
      etagFor = rewrite;
    },
    kms(match) {
      kmsKeys = match;
    },
    refuseChecksums(naming) {
      refusingChecksums = { naming };
    },
    refuseConditionalWrites() {
      refusingConditions = true;
    },
    count(kind) {
      return requests.filter((request) => kindOf(request) === kind).length;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  cleanups.push(() => proxy.close().catch(() => undefined));
  return proxy;
}

function drain(req: IncomingMessage, then: () => void): void {
  req.resume();
  req.on('end', then);
}

function reply(res: ServerResponse, status: number, xml: string, seen?: ProxyRequest): void {
  if (seen) seen.status = status;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
}

/** Replaces `<ETag>` inside each `<Contents>` with what `etagOf(key, s3rver's ETag)` gives. */
function rewriteEtags(xml: string, etagOf: (key: string, upstream: string) => string): string {
  return xml.replace(/<Contents>([\s\S]*?)<\/Contents>/g, (contents, inner: string) => {
    const key = /<Key>([\s\S]*?)<\/Key>/.exec(inner)?.[1];
    const upstream = /<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1];
    if (key === undefined || upstream === undefined) return contents;
    const etag = etagOf(unescapeXml(key), bare(unescapeXml(upstream)));
    return contents.replace(/<ETag>[\s\S]*?<\/ETag>/, `<ETag>&quot;${etag}&quot;</ETag>`);
  });
}

/** An ETag without quotes (`"…"`, `W/"…"`). */
function bare(etag: string): string {
  return etag.trim().replace(/^W\//, '').replace(/"/g, '');
}

/** The path of a request without its query. */
function pathOf(url: string): string {
  return url.split('?', 1)[0]!;
}

/** The key of a path-style request (`/bucket/a%20b/c.jpg?x` → `a b/c.jpg`). */
function keyOfPath(path: string): string {
  const [, , ...key] = path.split('?', 1)[0]!.split('/');
  return decodeURIComponent(key.join('/'));
}

function unescapeXml(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&amp;/g, '&');
}
