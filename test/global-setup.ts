/**
 * Vitest's global setup: `npm run build` (scripts/build.mjs, about a second), so a bare `npx vitest run` never
 * tests an older build: the worker threads load dist/workers/tasks.js, the process tests spawn the bin.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], {
    stdio: 'inherit',
  });
}
