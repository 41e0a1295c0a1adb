/**
 * The HTTP server of SPEC §6 on `node:http`: routing, the headers every answer carries, and the one place
 * where anything thrown becomes a response. Handlers live in `api.ts` (JSON), `thumbnails.ts` (image
 * files) and `page.ts` (the page). Request targets are matched segment by segment on the raw path, before
 * any decoding, and each parameter is decoded and validated on its own: `..`, `%2F` or NUL can never
 * change which route answers, and no route maps a request path onto the file system.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AssessTask } from '../../workers/assess.js';
import type { Actor } from '../engine/discover.js';
import { UsageError, messageOf } from '../errors.js';
import { createPool, type WorkerPool } from '../engine/pool.js';
import { resolveDataRoot, type DataRoot, type RootOptions } from '../engine/root.js';
import { decodeSegment } from './actors.js';
import { createApi, type Api } from './api.js';
import { badRequest, gone, HttpError, INTERNAL_ERROR, methodNotAllowed, misdirected, notFound } from './http-errors.js';
import type { WatchOptions } from './watch.js';
import { FAVICON_SVG, PAGE_CSP, PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.js';
import { ErrorBodySchema } from './schema.js';
import { openActorImage, sendThumbnail } from './thumbnails.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './defaults.js';

export { DEFAULT_HOST, DEFAULT_PORT } from './defaults.js';

export interface ServerOptions extends RootOptions {
  /** Default {@link DEFAULT_HOST}. */
  host?: string;
  /** Default {@link DEFAULT_PORT}; 0 picks a free port. */
  port?: number;
  /** Hashing threads; default the machine's available parallelism. */
  workers?: number;
  /** Where failures that are not the client's fault are logged, with their stack (default: stderr). */
  log?: (line: string) => void;
  /**
   * Host names answered besides loopback ones (`studio.local`): a studio's dev server that proxies with
   * its own name. Given any, the Host check applies whatever address the server listens on.
   */
  allowedHosts?: string[];
  /** An origin (`http://localhost:5173`) whose pages may read the answers (CORS): a studio calling it directly. */
  corsOrigin?: string;
  /** Override the slow-client limits (default: headers within 10 s, the whole request within 30 s; tests make them short). */
  timeouts?: { headersMs?: number; requestMs?: number };
  /**
   * Test-only: awaited before each assessment goes to the pool, while it holds its slot, so a test can keep
   * assessments in flight and fill the queue behind them over real HTTP.
   */
  beforeAssess?: (actor: Actor) => Promise<void>;
  /** Test-only: how the actor list's change watches are set (watch.ts). */
  watching?: WatchOptions;
  /** Starts the worker pool (tests wrap the real one to hold its tasks); default `createPool`. */
  createPool?: (threads: number | undefined) => WorkerPool;
}

export interface RunningServer {
  /** `http://<host>:<port>`, the port the server actually listens on. */
  url: string;
  host: string;
  port: number;
  /** Stops accepting connections, lets requests in flight finish, then stops the workers. Idempotent. */
  close(): Promise<void>;
}

const METHODS = ['GET', 'HEAD'] as const;

/** Slow or stalled clients cannot hold a connection: headers within 10 s, the whole request within 30 s. */
const TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000 };
/** How long `close()` waits for requests in flight before cutting their connections. */
const CLOSE_GRACE_MS = 10_000;

type Handler = (params: string[], req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

interface Route {
  /** Literal segments, and `:name` for a parameter (decoded with `decodeSegment`). */
  pattern: string[];
  handle: Handler;
}

/**
 * Starts the server and its worker pool.
 * @throws {UsageError} when the data root is missing or the address cannot be listened on.
 * @example
 * const server = await startServer({ root: '/data/studio', port: 0 });
 * console.log(server.url); // http://127.0.0.1:40123
 * await server.close();
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const data = await resolveDataRoot(options);
  const host = options.host ?? DEFAULT_HOST;
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  // The routes (and the worker pool behind them) exist once the port is ours: a pool stopped while its
  // threads still load their modules can abort Node, so a port in use must not start one.
  let routes: Route[] = [];
  const access: Access = {
    checkHost: true,
    allowedHosts: new Set(options.allowedHosts?.map((name) => name.toLowerCase())),
    corsOrigin: options.corsOrigin,
  };

  const server = httpServer(options.timeouts, (req, res) => void respond(req, res, routes, access, log));
  await listenOn(server, host, options.port ?? DEFAULT_PORT);
  const pool = (options.createPool ?? createPool)(options.workers);
  const assessing = withBeforeAssess(pool, options.beforeAssess);
  const api = createApi(data, assessing, options.watching);
  routes = routesOf(api, data);
  const address = server.address() as AddressInfo;
  access.checkHost = isLoopbackAddress(address.address) || access.allowedHosts.size > 0;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    host: address.address,
    port: address.port,
    close: () => (closing ??= shutDown(server, () => (api.close(), pool.destroy()))),
  };
}

/**
 * Node checks the two timeouts only every connectionsCheckingInterval (30 s by default): checked often
 * enough here that a stalled client is dropped close to its limit.
 */
function httpServer(
  timeouts: ServerOptions['timeouts'],
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  const headersTimeout = timeouts?.headersMs ?? TIMEOUTS.headersTimeout;
  const requestTimeout = Math.max(timeouts?.requestMs ?? TIMEOUTS.requestTimeout, headersTimeout);
  return createServer(
    {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: TIMEOUTS.keepAliveTimeout,
      connectionsCheckingInterval: Math.min(1000, Math.ceil(headersTimeout / 4)),
    },
    handle,
  );
}

/** @throws {UsageError} when the address cannot be listened on (in use, not ours). */
async function listenOn(server: Server, host: string, port: number): Promise<void> {
  try {
    await listen(server, host, port);
  } catch (error) {
    throw new UsageError(
      `cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? messageOf(error)}); choose another --host or --port`,
    );
  }
}

/** The pool, with the test-only `beforeAssess` awaited before each task reaches it. */
function withBeforeAssess(
  pool: WorkerPool,
  beforeAssess: ServerOptions['beforeAssess'],
): Pick<WorkerPool, 'assess' | 'threads'> {
  if (beforeAssess === undefined) return pool;
  return {
    threads: pool.threads,
    async assess(task: AssessTask) {
      await beforeAssess(task.actor);
      return pool.assess(task);
    },
  };
}

function routesOf(api: Api, data: DataRoot): Route[] {
  return [
    {
      pattern: [],
      handle: (_, __, res) =>
        sendText(res, 'text/html; charset=utf-8', PAGE_HTML, { 'Content-Security-Policy': PAGE_CSP }),
    },
    { pattern: ['page.css'], handle: (_, __, res) => sendText(res, 'text/css; charset=utf-8', PAGE_CSS) },
    { pattern: ['page.js'], handle: (_, __, res) => sendText(res, 'text/javascript; charset=utf-8', PAGE_JS) },
    { pattern: ['favicon.svg'], handle: (_, __, res) => sendText(res, 'image/svg+xml', FAVICON_SVG) },
    { pattern: ['healthz'], handle: (_, __, res) => sendJson(res, 200, api.health()) },
    {
      pattern: ['api', 'actors'],
      handle: async (_, __, res) => sendJson(res, 200, await api.actorList(whileConnected(res))),
    },
    {
      pattern: ['api', 'actors', ':actor', 'training-data'],
      handle: async ([actor], _, res) => sendJson(res, 200, await api.trainingData(actor!, whileConnected(res))),
    },
    {
      pattern: ['thumbnails', ':actor', ':file'],
      handle: async ([actor, file], req, res) =>
        sendThumbnail(req, res, await openActorImage(api.actor, data.actorsReal, actor!, 'training_data', file!)),
    },
    {
      // Where the studio's UI finds an actor's images: `local_path` and `base_image_path` point here.
      pattern: ['data', 'actors', ':actor', ':folder', ':file'],
      handle: async ([actor, folder, file], req, res) =>
        sendThumbnail(req, res, await openActorImage(api.actor, data.actorsReal, actor!, folder!, file!)),
    },
  ];
}

/** Who may ask: the Host names answered (when `checkHost`), and the one other origin whose pages may read answers. */
interface Access {
  checkHost: boolean;
  allowedHosts: Set<string>;
  corsOrigin: string | undefined;
}

async function respond(
  req: IncomingMessage,
  res: ServerResponse,
  routes: Route[],
  access: Access,
  log: (line: string) => void,
): Promise<void> {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  try {
    if (access.checkHost) requireKnownHost(req, access.allowedHosts);
    if (access.corsOrigin !== undefined && allowOrigin(req, res, access.corsOrigin)) return;
    const target = req.url ?? '';
    if (!target.startsWith('/')) throw badRequest('the request target must be a path starting with "/"');
    const path = target.split(/[?#]/, 1)[0]!;
    const segments = path === '/' ? [] : path.slice(1).split('/');
    const route = routes.find((candidate) => matches(candidate.pattern, segments));
    if (route === undefined)
      throw notFound(
        'nothing here; the API is GET /api/actors, GET /api/actors/:actorId/training-data and GET /healthz',
      );
    if (!(METHODS as readonly string[]).includes(req.method ?? '')) throw methodNotAllowed(req.method ?? '?', METHODS);
    const params = route.pattern.flatMap((part, i) =>
      part.startsWith(':') ? [decodeSegment(segments[i]!, PARAMETER_NAMES[part] ?? 'the filename')] : [],
    );
    await route.handle(params, req, res);
  } catch (error) {
    sendError(res, error, log, req);
  }
}

const PARAMETER_NAMES: Record<string, string> = { ':actor': 'the actor id', ':folder': 'the folder' };

/**
 * CORS for the one origin allowed: its requests get `Access-Control-Allow-Origin`, and its preflight
 * (OPTIONS) is answered here, 204. True when the request was answered.
 */
function allowOrigin(req: IncomingMessage, res: ServerResponse, origin: string): boolean {
  res.setHeader('Vary', 'Origin');
  if (req.headers.origin !== origin) return false;
  res.setHeader('Access-Control-Allow-Origin', origin);
  if (req.method !== 'OPTIONS') return false;
  res.writeHead(204, {
    'Access-Control-Allow-Methods': METHODS.join(', '),
    'Access-Control-Allow-Headers': 'Accept, Content-Type',
    'Access-Control-Max-Age': '600',
  });
  res.end();
  return true;
}

/** Aborts when the client goes before its answer is sent, so the work queued for it alone is dropped. */
function whileConnected(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(gone());
  });
  return controller.signal;
}

function matches(pattern: string[], segments: string[]): boolean {
  return pattern.length === segments.length && pattern.every((part, i) => part.startsWith(':') || part === segments[i]);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

function sendText(res: ServerResponse, type: string, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(200, {
    ...headers,
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache',
  });
  res.end(text);
}

function sendError(res: ServerResponse, error: unknown, log: (line: string) => void, req: IncomingMessage): void {
  const known = error instanceof HttpError;
  if (!known || error.status >= 500) {
    // The stack goes to the server's log only; the client gets the message (HttpError) or a fixed sentence.
    log(
      `actor-sync serve: ${req.method} ${req.url}: ${known ? error.message : ((error as Error)?.stack ?? messageOf(error))}`,
    );
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = ErrorBodySchema.parse({ error: known ? error.message : INTERNAL_ERROR });
  sendJson(res, known ? error.status : 500, body, known ? error.headers : {});
}

/**
 * DNS rebinding: a web page can point its own name at 127.0.0.1 and read a loopback server with the
 * visitor's browser. Such requests carry the page's name in Host, so a loopback server answers only to
 * loopback names and the names `--allowed-host` gives.
 */
function requireKnownHost(req: IncomingMessage, allowed: Set<string>): void {
  const host = req.headers.host;
  if (host === undefined) return;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  const lower = name.toLowerCase();
  if (
    lower === 'localhost' ||
    lower.endsWith('.localhost') ||
    lower === '[::1]' ||
    /^127(\.\d{1,3}){3}$/.test(lower) ||
    allowed.has(lower)
  )
    return;
  throw misdirected(host);
}

function isLoopbackAddress(address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function shutDown(server: Server, stopWorkers: () => Promise<void>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const grace = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
  grace.unref();
  try {
    await closed;
  } finally {
    clearTimeout(grace);
    await stopWorkers();
  }
}
