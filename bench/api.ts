/**
 * `npm run bench:api`: latency of the seed case's `GET /api/actors/0000/training-data` (SPEC §6), warm,
 * median of 200, in two states: a synced manifest (hashes reused: the normal case) and a manifest that
 * records no hashes (all 17 images rehashed on every request). Images of 150–500 KB, like the reference
 * workload. Prints a table and writes bench/results/api-<date>.json.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateDataRoot } from '../src/demo/generate.js';
import { startServer } from '../src/server/app.js';
import { runSync } from '../src/sync.js';
import { medianOf } from '../src/throughput.js';

const project = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const REQUESTS = 200;
const WARM_UP = 20;

const root = mkdtempSync(join(tmpdir(), 'actor-sync-bench-api-'));
const generated = await generateDataRoot(join(root, 'r'), { actors: 1, minBytes: 150_000, maxBytes: 500_000 });
const data = generated.root;
const manifest = join(data, 'data/actor_manifests/0000_manifest.json');
const pristine = readFileSync(manifest);

async function measure(label: string): Promise<{ label: string; median_ms: number; p95_ms: number; min_ms: number }> {
  const server = await startServer({ root: data, port: 0 });
  const url = `${server.url}/api/actors/0000/training-data`;
  const times: number[] = [];
  try {
    for (let i = 0; i < WARM_UP + REQUESTS; i += 1) {
      const start = performance.now();
      const response = await fetch(url);
      const body = (await response.json()) as { total_count: number };
      if (response.status !== 200 || body.total_count !== 17) throw new Error(`unexpected answer ${response.status}`);
      if (i >= WARM_UP) times.push(performance.now() - start);
    }
  } finally {
    await server.close();
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { label, median_ms: medianOf(times), p95_ms: sorted[Math.floor(sorted.length * 0.95)]!, min_ms: sorted[0]! };
}

// No hashes recorded: every request hashes all 17 images.
writeFileSync(manifest, pristine);
const rehashing = await measure('manifest without hashes (17 images rehashed per request)');
// Synced: the stat tokens match, so no image is read.
await runSync({ root: data });
const synced = await measure('synced manifest (hashes reused)');
const bytes = generated.totalBytes;
rmSync(root, { recursive: true, force: true });

const results = { date: new Date().toISOString(), requests: REQUESTS, images: 17, bytes, cases: [synced, rehashing] };
const date = results.date.slice(0, 19).replace(/:/g, '-');
writeFileSync(join(project, 'bench/results', `api-${date}.json`), `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`GET /api/actors/0000/training-data, 17 images (${(bytes / 1048576).toFixed(1)} MB), median of ${REQUESTS} after ${WARM_UP} warm-up\n`);
for (const c of results.cases) process.stdout.write(`  ${c.label.padEnd(58)} median ${c.median_ms.toFixed(1)} ms, p95 ${c.p95_ms.toFixed(1)} ms\n`);
process.stdout.write(`wrote bench/results/api-${date}.json\n`);
