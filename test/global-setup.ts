/**
 * Vitest's global setup: rebuilds the worker bundle (dist/workers/tasks.bundle.js, ~0.1 s) from the
 * sources, so a bare `npx vitest run` never tests the worker of an older build. The rest of dist/ (the
 * CLI the process tests spawn) is `npm run build`'s.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url)), '--worker'], {
    stdio: 'inherit',
  });
}
