/** `actor-sync serve`: the training-data API and its page (SPEC §6), until SIGINT/SIGTERM. */
import { Command, InvalidArgumentError } from 'commander';
import { EXIT } from '../errors.js';
import { addRootOptions, positiveInteger, type CommandContext } from './common.js';

export interface ServeFlags {
  root?: string;
  actorsDir?: string;
  manifestsDir?: string;
  host: string;
  port: number;
  workers?: number;
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
    log: (line) => context.stderr.write(`${line}\n`),
  });
  context.stdout.write(`listening on ${server.url}\n`);
  await aborted(context.signal);
  if (!flags.quiet) context.stderr.write('actor-sync serve: shutting down (requests in flight finish first)\n');
  await server.close();
  return EXIT.ok;
}

export function defineServe(run: (flags: ServeFlags) => Promise<void>): Command {
  return addRootOptions(new Command('serve').description('serve the training-data API and a page for people; writes nothing'))
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', port, 8787)
    .option('--workers <n>', 'hashing threads (default: available parallelism)', positiveInteger)
    .option('--quiet', 'no messages on stderr but errors')
    .action(run);
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError(`expected a port from 0 to 65535, got "${value}"`);
  return n;
}

/** Settles when `signal` aborts; never without one. */
function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) resolve();
    else signal?.addEventListener('abort', () => resolve(), { once: true });
  });
}
