/** `actor-sync serve`: the training-data API and its page (SPEC §6), until SIGINT/SIGTERM. */
import { Command, InvalidArgumentError } from 'commander';
import { EXIT } from '../errors.js';
import { DEFAULT_HOST, DEFAULT_PORT } from '../server/defaults.js';
import { addRootOptions, threadCount, type CommandContext } from './common.js';

export interface ServeFlags {
  root?: string;
  actorsDir?: string;
  manifestsDir?: string;
  host: string;
  port: number;
  workers?: number;
  allowedHost?: string[];
  corsOrigin?: string;
  quiet?: boolean;
}

/**
 * Serves until `context.signal` aborts (the entry aborts it on SIGINT/SIGTERM), then stops accepting
 * connections, lets requests in flight finish, stops the workers and returns 0. Prints
 * `listening on http://HOST:PORT` on stdout once the port is open.
 */
export async function serveCommand(flags: ServeFlags, context: CommandContext): Promise<number> {
  // Loaded on demand: the other commands never pay for the server's modules.
  const { startServer } = await import('../server/app.js');
  context.signalIsStop?.();
  const server = await startServer({
    root: flags.root,
    actorsDir: flags.actorsDir,
    manifestsDir: flags.manifestsDir,
    host: flags.host,
    port: flags.port,
    workers: flags.workers,
    allowedHosts: flags.allowedHost,
    corsOrigin: flags.corsOrigin,
    log: (line) => context.stderr.write(`${line}\n`),
  });
  context.stdout.write(`listening on ${server.url}\n`);
  await aborted(context.signal);
  if (!flags.quiet) context.stderr.write('actor-sync serve: shutting down (requests in flight finish first)\n');
  await server.close();
  return EXIT.ok;
}

export function defineServe(run: (flags: ServeFlags) => Promise<void>): Command {
  return addRootOptions(
    new Command('serve').description('serve the training-data API and a page for people; writes nothing'),
  )
    .option('--host <host>', 'address to listen on', DEFAULT_HOST)
    .option('--port <port>', 'port to listen on (0 picks a free one)', port, DEFAULT_PORT)
    .option('--workers <n>', 'hashing threads (default: available parallelism)', threadCount)
    .option(
      '--allowed-host <name>',
      'also answer requests for this Host name, as when a studio dev server proxies to it (repeatable)',
      hostName,
      [],
    )
    .option('--cors-origin <url>', 'let pages of this origin (http://localhost:5173) read the answers', origin)
    .option('--quiet', 'no messages on stderr but errors')
    .action(run);
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535)
    throw new InvalidArgumentError(`expected a port from 0 to 65535, got "${value}"`);
  return n;
}

function hostName(value: string, previous: string[]): string[] {
  // A DNS name or an IPv6 address in brackets, as it appears in a Host header without its port.
  if (!/^([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])$/i.test(value))
    throw new InvalidArgumentError(`expected a host name without port or scheme (studio.local), got "${value}"`);
  return [...previous, value];
}

function origin(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  // The origin a browser sends: scheme, host and port only.
  if (url === undefined || !['http:', 'https:'].includes(url.protocol) || url.origin !== value.replace(/\/$/, '')) {
    throw new InvalidArgumentError(`expected an origin such as http://localhost:5173 (no path), got "${value}"`);
  }
  return url.origin;
}

/** Settles when `signal` aborts; never without one. */
function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) resolve();
    else signal?.addEventListener('abort', () => resolve(), { once: true });
  });
}
