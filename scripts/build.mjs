// `npm run build`: the one build, from the .ts sources (types are checked apart: `npm run typecheck`).
// One dist/, rebuilt whole (vitest's global setup runs it too, so no test runs an older build): dist/src
// holds the code that ships, the bin (dist/src/cli/main.js) and the exports (dist/src/index.js) sharing its
// chunks with the worker's entry (dist/workers/tasks.js); dist/bench and dist/demo the tooling (not in the
// package).
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
 * The shipped code as one code-split bundle: each command, and each worker thread, loads a few files instead
 * of ~200 modules (zod alone is 97). Against per-file modules (bench/ab.sh, bench/README.md): warm sync −20 %
 * at scale 1, cold −6 % at scale 1 and 10. The worker is an entry like the bin (a bundle of its own was no
 * faster). pool.js and legacy.js are entries for the tests that load them. piscina (it loads its worker by
 * path) and the AWS SDK (only the S3 commands load it) stay outside.
 */
async function buildPackage() {
  await build({
    ...COMMON,
    entryPoints: [
      'src/index.ts',
      'src/cli/main.ts',
      'src/engine/pool.ts',
      'src/manifest/legacy.ts',
      'workers/tasks.ts',
    ],
    outbase: '.',
    outdir: 'dist',
    chunkNames: 'src/[name]-[hash]',
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

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
await Promise.all([buildPackage(), buildTools()]);
