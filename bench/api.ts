/**
 * `npm run bench:api [-- --baseline OTHER/dist] [--rounds N]`: the HTTP API at the reference workload (SPEC
 * §7: 289 actors × ~17 images of 150–500 KB, synced, page cache warm). Each server runs in a process of its
 * own (api-server.ts), which reports server time per request and its peak RSS. Figures, medians:
 * - `GET /api/actors` with nothing changed (client and server time, after warm-up);
 * - `GET /api/actors/0000/training-data` on one keep-alive connection (server time, and the round trip);
 * - a hostile manifest: actor 0007's made 100 000 levels deep in a field we do not own; the list, that
 *   actor's answer, and the server's peak RSS (a fresh process).
 * With `--baseline`, the other build's server is measured in the same rounds, interleaved. Writes
 * bench/results/api-<date>.json. See bench/README.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateDataRoot } from '../demo/generate.js';
import { runSync } from '../src/engine/sync.js';
import { medianOf } from '../src/engine/throughput.js';

const here = dirname(fileURLToPath(import.meta.url));
const project = resolve(here, '../..');
const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    cache: { type: 'string', default: join(project, 'bench/cache') },
  },
});
const LIST_CALLS = 30;
const ONE_CALLS = 300;
const WARM_UP = 5;
const HOSTILE_ACTOR = '0007';
const DEPTH = 100_000;

interface Build {
  label: string;
  dist: string;
}
const builds: Build[] = [
  ...(values.baseline ? [{ label: 'before', dist: resolve(values.baseline) }] : []),
  { label: 'after', dist: join(project, 'dist') },
];

/** The workload, generated once into the cache folder, then synced so every actor is at rest. */
async function workload(): Promise<string> {
  const base = join(values.cache!, 'api-289');
  const root = join(base, 'root');
  if (!existsSync(join(base, 'generated'))) {
    process.stderr.write(`generating 289 actors × ~17 images of 150–500 KB into ${root}…\n`);
    mkdirSync(base, { recursive: true });
    await generateDataRoot(root, { minBytes: 150_000, maxBytes: 500_000 });
    writeFileSync(join(base, 'generated'), '');
  }
  await runSync({ root });
  return root;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** One GET on the keep-alive connection; the status, the body and the round trip in ms. */
function get(url: string): Promise<{ status: number; body: string; ms: number }> {
  const start = performance.now();
  return new Promise((done, fail) => {
    request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, body, ms: performance.now() - start }));
      res.on('error', fail);
    })
      .on('error', fail)
      .end();
  });
}

interface Server {
  url: string;
  report(): Promise<{ times: { path: string; ms: number }[]; cpuMs: number; peakRssMb: number }>;
  close(): Promise<void>;
}

function startServer(build: Build, root: string): Promise<Server> {
  const child: ChildProcess = fork(join(here, 'api-server.js'), [build.dist, root], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () => new Promise<any>((done) => child.once('message', done));
  return next().then(({ url }) => ({
    url,
    report: () => {
      const answer = next();
      child.send('report');
      return answer;
    },
    close: () =>
      new Promise<void>((done) => {
        child.once('exit', () => done());
        child.send('close');
      }),
  }));
}

/** `calls` requests after a warm-up: median round trip and median server time, and the last answer. */
async function measure(server: Server, path: string, calls: number) {
  for (let i = 0; i < WARM_UP; i += 1) await get(server.url + path);
  await server.report();
  const trips: number[] = [];
  let last = { status: 0, body: '' };
  for (let i = 0; i < calls; i += 1) {
    const answer = await get(server.url + path);
    trips.push(answer.ms);
    last = answer;
  }
  const { times, cpuMs, peakRssMb } = await server.report();
  return {
    status: last.status,
    body: last.body,
    client_ms: medianOf(trips),
    server_ms: medianOf(times.map((t) => t.ms)),
    cpu_ms: cpuMs / calls,
    peakRssMb,
  };
}

async function normal(build: Build, root: string) {
  const server = await startServer(build, root);
  try {
    const list = await measure(server, '/api/actors', LIST_CALLS);
    const one = await measure(server, '/api/actors/0000/training-data', ONE_CALLS);
    if (list.status !== 200 || one.status !== 200)
      throw new Error(`${build.label}: unexpected answers ${list.status}, ${one.status}`);
    return {
      list_client_ms: list.client_ms,
      list_server_ms: list.server_ms,
      list_cpu_ms: list.cpu_ms,
      one_server_ms: one.server_ms,
      one_client_ms: one.client_ms,
      one_cpu_ms: one.cpu_ms,
      peak_rss_mb: one.peakRssMb,
    };
  } finally {
    await server.close();
  }
}

/** The hostile manifest in place for one fresh server; put back as it was after. */
async function hostile(build: Build, root: string) {
  const path = join(root, 'data/actor_manifests', `${HOSTILE_ACTOR}_manifest.json`);
  const pristine = readFileSync(path);
  const manifest = JSON.parse(pristine.toString('utf8')) as { metadata?: Record<string, unknown> };
  manifest.metadata = { ...manifest.metadata, notes: '@@DEEP@@' };
  writeFileSync(path, JSON.stringify(manifest, null, 2).replace('"@@DEEP@@"', '['.repeat(DEPTH) + ']'.repeat(DEPTH)));
  const server = await startServer(build, root);
  try {
    const list = await measure(server, '/api/actors', LIST_CALLS);
    const rows = JSON.parse(list.body) as
      | { actors?: { actor_id?: string; id?: string; error?: string | null }[] }
      | { actor_id?: string; id?: string; error?: string | null }[];
    const row = (Array.isArray(rows) ? rows : (rows.actors ?? [])).find((r) => (r.actor_id ?? r.id) === HOSTILE_ACTOR);
    const one = await measure(server, `/api/actors/${HOSTILE_ACTOR}/training-data`, 20);
    return {
      list_client_ms: list.client_ms,
      list_server_ms: list.server_ms,
      list_error: row?.error ?? null,
      one_status: one.status,
      one_server_ms: one.server_ms,
      one_body: one.body.trim(),
      peak_rss_mb: one.peakRssMb,
    };
  } finally {
    await server.close();
    writeFileSync(path, pristine);
  }
}

const root = await workload();
const rounds = Number(values.rounds);
const runs: Record<
  string,
  { normal: Awaited<ReturnType<typeof normal>>[]; hostile: Awaited<ReturnType<typeof hostile>>[] }
> = {};
for (const build of builds) runs[build.label] = { normal: [], hostile: [] };
for (let round = 0; round < rounds; round += 1) {
  for (const build of builds) {
    process.stderr.write(`round ${round + 1}/${rounds}: ${build.label}…\n`);
    runs[build.label]!.normal.push(await normal(build, root));
    runs[build.label]!.hostile.push(await hostile(build, root));
  }
}

const med = <T>(list: T[], pick: (item: T) => number) => medianOf(list.map(pick));
const summary = builds.map(({ label, dist }) => {
  const { normal: n, hostile: h } = runs[label]!;
  return {
    label,
    dist,
    list_ms: med(n, (r) => r.list_client_ms),
    list_server_ms: med(n, (r) => r.list_server_ms),
    list_cpu_ms: med(n, (r) => r.list_cpu_ms),
    one_cpu_ms: med(n, (r) => r.one_cpu_ms),
    one_server_ms: med(n, (r) => r.one_server_ms),
    one_round_trip_ms: med(n, (r) => r.one_client_ms),
    peak_rss_mb: med(n, (r) => r.peak_rss_mb),
    hostile_list_ms: med(h, (r) => r.list_client_ms),
    hostile_vs_normal: med(h, (r) => r.list_client_ms) / med(n, (r) => r.list_client_ms),
    hostile_actor_status: h[0]!.one_status,
    hostile_actor_server_ms: med(h, (r) => r.one_server_ms),
    hostile_peak_rss_mb: Math.max(...h.map((r) => r.peak_rss_mb)),
    hostile_list_error: h[0]!.list_error,
    hostile_actor_body: h[0]!.one_body,
  };
});

const results = {
  date: new Date().toISOString(),
  load_average: loadavg(),
  rounds,
  actors: 289,
  list_calls: LIST_CALLS,
  one_calls: ONE_CALLS,
  depth: DEPTH,
  summary,
  runs,
};
const date = results.date.slice(0, 19).replace(/:/g, '-');
writeFileSync(join(project, 'bench/results', `api-${date}.json`), `${JSON.stringify(results, null, 2)}\n`);
const cell = (value: number) => value.toFixed(value < 10 ? 2 : 1);
const rows: [string, (s: (typeof summary)[number]) => string][] = [
  ['GET /api/actors, nothing changed (median ms)', (s) => cell(s.list_ms)],
  ['  of which server time', (s) => cell(s.list_server_ms)],
  ['  server CPU per call, all threads', (s) => cell(s.list_cpu_ms)],
  ['GET /api/actors/0000/training-data, server time, keep-alive', (s) => cell(s.one_server_ms)],
  ['  round trip', (s) => cell(s.one_round_trip_ms)],
  ['  server CPU per call, all threads', (s) => cell(s.one_cpu_ms)],
  ['peak RSS (MB)', (s) => cell(s.peak_rss_mb)],
  [
    `hostile manifest (${HOSTILE_ACTOR}, ${DEPTH} levels): GET /api/actors`,
    (s) => `${cell(s.hostile_list_ms)} (${s.hostile_vs_normal.toFixed(2)} ×)`,
  ],
  [
    `  GET /api/actors/${HOSTILE_ACTOR}/training-data: status, server ms`,
    (s) => `${s.hostile_actor_status}, ${cell(s.hostile_actor_server_ms)}`,
  ],
  ['  peak RSS (MB)', (s) => cell(s.hostile_peak_rss_mb)],
];
process.stdout.write(
  `load average at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${availableParallelism()} cores\n`,
);
process.stdout.write(
  `289 actors, medians of ${rounds} rounds (${LIST_CALLS} lists, ${ONE_CALLS} single requests each)\n`,
);
process.stdout.write(`${''.padEnd(64)}${summary.map((s) => s.label.padStart(16)).join('')}\n`);
for (const [label, value] of rows)
  process.stdout.write(`${label.padEnd(64)}${summary.map((s) => value(s).padStart(16)).join('')}\n`);
process.stdout.write(
  `the hostile actor's row: ${summary.map((s) => `${s.label}: ${s.hostile_list_error}`).join(' | ')}\n`,
);
process.stdout.write(`wrote bench/results/api-${date}.json\n`);
