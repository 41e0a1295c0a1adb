/**
 * A real S3-compatible server on loopback (s3rver, port 0, in a temp folder), clients for it, and a
 * fault-injecting HTTP proxy to put between the two: HTTP 500, 503 SlowDown, a reset connection, a
 * stalled response, a body cut off mid-transfer, and listings whose ETags are rewritten (s3rver never
 * returns S3's multipart `…-N` form).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll } from 'vitest';
import { S3RVER_CREDENTIALS, startLocalS3 } from '../../src/demo/s3rver.js';
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
  const s3 = createS3({ endpoint, forcePathStyle: true, credentials: TEST_CREDENTIALS, maxAttempts: 3, requestTimeoutMs: 30_000, ...options });
  cleanups.push(() => s3.close());
  return s3;
}

/** Puts an object directly (no MD5 metadata unless given), bypassing the code under test. */
export async function putObject(s3: S3Access, bucket: string, key: string, body: string | Buffer, metadata?: Record<string, string>): Promise<void> {
  await s3.run(() => s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body), Metadata: metadata })));
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

  const server = http.createServer((req, res) => {
    const seen: ProxyRequest = { method: req.method ?? 'GET', url: req.url ?? '/' };
    requests.push(seen);
    if (holding?.match(seen)) return void holding.waiting.push(() => forward(req, res, false));
    const plan = plans.find((p) => p.remaining > 0 && p.match(seen));
    if (plan) {
      plan.remaining -= 1;
      seen.fault = plan.fault;
    }
    switch (seen.fault) {
      case 'http500':
        return drain(req, () => reply(res, 500, ERROR_XML('InternalError', 'We encountered an internal error. Please try again.')));
      case 'slowDown':
        return drain(req, () => reply(res, 503, ERROR_XML('SlowDown', 'Please reduce your request rate.')));
      case 'reset':
        return void req.socket.destroy();
      case 'stall':
        return void req.resume(); // read the body, answer never
      default:
        return forward(req, res, seen.fault === 'truncate');
    }
  });

  function forward(req: IncomingMessage, res: ServerResponse, truncate: boolean): void {
    const upstreamReq = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        const rewrite = etagFor !== undefined && /[?&]list-type=2/.test(req.url ?? '');
        const headerEtag = etagFor?.(keyOfPath(req.url ?? '/'));
        if (headerEtag !== undefined && upstreamRes.headers.etag !== undefined) upstreamRes.headers.etag = `"${headerEtag}"`;
        if (!truncate && !rewrite) {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upstreamRes.on('end', () => {
          let body = Buffer.concat(chunks);
          if (rewrite) body = Buffer.from(rewriteEtags(body.toString('utf8'), etagFor!));
          const headers = { ...upstreamRes.headers, 'content-length': String(body.length) };
          res.writeHead(upstreamRes.statusCode ?? 502, headers);
          if (!truncate) return void res.end(body);
          res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
        });
      },
    );
    upstreamReq.on('error', () => res.socket?.destroy());
    req.pipe(upstreamReq);
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

function reply(res: ServerResponse, status: number, xml: string): void {
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
}

/** Replaces `<ETag>` inside each `<Contents>` whose `<Key>` the callback knows. */
function rewriteEtags(xml: string, etagFor: (key: string) => string | undefined): string {
  return xml.replace(/<Contents>([\s\S]*?)<\/Contents>/g, (contents, inner: string) => {
    const key = /<Key>([\s\S]*?)<\/Key>/.exec(inner)?.[1];
    const etag = key === undefined ? undefined : etagFor(unescapeXml(key));
    return etag === undefined ? contents : contents.replace(/<ETag>[\s\S]*?<\/ETag>/, `<ETag>&quot;${etag}&quot;</ETag>`);
  });
}

/** The key of a path-style request (`/bucket/a%20b/c.jpg?x` → `a b/c.jpg`). */
function keyOfPath(path: string): string {
  const [, , ...key] = path.split('?', 1)[0]!.split('/');
  return decodeURIComponent(key.join('/'));
}

function unescapeXml(text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16))).replace(/&amp;/g, '&');
}
