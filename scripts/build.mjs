// `npm run build`: the one build, from the .ts sources (types are checked apart: `npm run typecheck`).
// One dist/: dist/src holds the code that ships, the bin (dist/src/cli/main.js) and the exports
// (dist/src/index.js) sharing its chunks; dist/workers the worker's bundle; dist/bench and dist/demo
// the tooling (not in the package).
//
//   node scripts/build.mjs            everything
//   node scripts/build.mjs --worker   the worker bundle alone (vitest's global setup)
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COMMON = {
  absWorkingDir: ROOT,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  logLevel: 'warning',
};
// Bundled CommonJS dependencies call require (commander) and read __filename
// (write-file-atomic's temp names); an ES module has neither.
const COMMONJS_GLOBALS = [
  "import{createRequire as __actorSyncRequire}from'node:module';",
  "import{dirname as __actorSyncDirname}from'node:path';import{fileURLToPath as __actorSyncPath}from'node:url';",
  'const require=__actorSyncRequire(import.meta.url),__filename=__actorSyncPath(import.meta.url),',
  '__dirname=__actorSyncDirname(__filename);',
].join('');

/**
 * A worker thread loads one file instead of its ~110 modules (zod alone is 97); piscina itself is never
 * bundled: it runs the thread. Not shown to pay at load ~40 (bench/ab.sh 7, scale 1, against per-file
 * modules: cold 34.7 vs 31.3 s, warm 14.6 vs 14.4 s, noise larger than either): to remeasure when quiet.
 */
export async function buildWorker() {
  const worker = { entryPoints: ['workers/tasks.ts'], outfile: 'dist/workers/tasks.bundle.js' };
  await build({ ...COMMON, ...worker, bundle: true, external: ['piscina'] });
}

/**
 * The shipped code as one code-split bundle (each command loads its part, a few files instead of ~200
 * modules): against per-file modules, bench/ab.sh 7 at scale 1 (load ~40), cold sync 19.4 s vs 22.5 s
 * (−14 %) and warm 5.6 s vs 8.7 s (−35 %). pool.js and legacy.js are entries for the tests that load them.
 * piscina (it loads its worker by path) and the AWS SDK (only the S3 commands load it) stay outside.
 */
async function buildPackage() {
  await build({
    ...COMMON,
    entryPoints: ['src/index.ts', 'src/cli/main.ts', 'src/engine/pool.ts', 'src/manifest/legacy.ts'],
    outbase: 'src',
    outdir: 'dist/src',
    bundle: true,
    splitting: true,
    external: ['piscina', '@aws-sdk/*'],
    banner: { js: COMMONJS_GLOBALS },
  });
}

/** bench/ and the demo, their packages loaded from node_modules (tooling: start-up does not matter). */
async function buildTools() {
  const tools = { ...COMMON, outbase: '.', outdir: 'dist', bundle: true, packages: 'external' };
  await build({ ...tools, entryPoints: ['bench/*.ts', 'demo/main.ts'] });
  await build({ ...tools, entryPoints: ['bench/*.cts'], format: 'cjs', outExtension: { '.js': '.cjs' } });
}

// Run, not imported (test/global-setup.ts runs it with --worker).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { worker: { type: 'boolean', default: false } } });
  if (values.worker) {
    await buildWorker();
  } else {
    rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
    await Promise.all([buildPackage(), buildTools(), buildWorker()]);
  }
}
