// `npm run build`: the one build, from the .ts sources into one dist/ that mirrors the tree (types are
// checked apart, by `npm run typecheck`). The bin (dist/src/cli/main.js), the package's exports
// (dist/src/index.js), bench/ and the demo all load the same per-file modules; only the worker is bundled.
//
//   node scripts/build.mjs            everything
//   node scripts/build.mjs --worker   the worker bundle alone (vitest's global setup)
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COMMON = { absWorkingDir: ROOT, platform: 'node', target: 'node20', sourcemap: true, logLevel: 'warning' };

/**
 * A worker thread loads one file instead of its ~110 modules (zod alone is 97): about half the load time,
 * and each of the pool's threads pays it. piscina itself is never bundled: it runs the thread.
 */
export async function buildWorker() {
  await build({
    ...COMMON,
    entryPoints: ['workers/tasks.ts'],
    outfile: 'dist/workers/tasks.bundle.js',
    bundle: true,
    format: 'esm',
    external: ['piscina'],
  });
}

/** Each .ts file to its .js beside the others, imports untouched (they already name the .js files). */
async function buildModules() {
  await build({ ...COMMON, entryPoints: ['src/**/*.ts', 'bench/**/*.ts'], outbase: '.', outdir: 'dist', format: 'esm' });
  await build({ ...COMMON, entryPoints: ['bench/**/*.cts'], outbase: '.', outdir: 'dist', format: 'cjs', outExtension: { '.js': '.cjs' } });
}

// Run, not imported (vitest.setup.ts imports buildWorker).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { worker: { type: 'boolean', default: false } } });
  if (!values.worker) rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
  await Promise.all([values.worker ? undefined : buildModules(), buildWorker()]);
}
