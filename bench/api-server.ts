/**
 * The server `npm run bench:api` measures, in a process of its own: `node api-server.js DIST ROOT` starts the
 * `startServer` of the build in DIST (this one or another, for a side-by-side run) on ROOT and sends its URL
 * over IPC. Server time is taken from Node's own HTTP diagnostics channels (request start → response
 * finish), so no build needs code for it. On `'report'` it sends the times since the last report, the CPU
 * time of the whole process (every thread) since then, and its peak RSS; on `'close'` it stops.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, root] = process.argv.slice(2);
// The package's exports: a build's one code-split bundle has no per-module files.
const { startServer } = (await import(
  pathToFileURL(join(dist!, 'src/index.js')).href
)) as typeof import('../src/index.js');

const started = new WeakMap<IncomingMessage, number>();
let times: { path: string; ms: number }[] = [];
subscribe('http.server.request.start', (message) => {
  started.set((message as { request: IncomingMessage }).request, performance.now());
});
subscribe('http.server.response.finish', (message) => {
  const { request } = message as { request: IncomingMessage };
  const start = started.get(request);
  if (start !== undefined) times.push({ path: request.url ?? '', ms: performance.now() - start });
});

let cpu = process.cpuUsage();
const server = await startServer({ root: root!, port: 0, log: () => undefined });
process.send!({ url: server.url });
process.on('message', (message) => {
  if (message === 'report') {
    const used = process.cpuUsage(cpu);
    process.send!({ times, cpuMs: (used.user + used.system) / 1000, peakRssMb: process.resourceUsage().maxRSS / 1024 });
    times = [];
    cpu = process.cpuUsage();
  } else if (message === 'close') {
    void server.close().then(() => process.exit(0));
  }
});
