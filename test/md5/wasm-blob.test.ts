/**
 * The committed WebAssembly MD5 (md5x4-wasm.ts, a base64 line) is what md5x4.c compiles to: rebuilt here with
 * clang and wasm-ld (.ci/run installs Debian's `clang lld`), byte for byte. Without them the test fails.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { tempRoot } from '../helpers/root.js';

const MD5_DIR = fileURLToPath(new URL('../../src/md5/', import.meta.url));

it('md5x4-wasm.ts is md5x4.c rebuilt by build-wasm.sh', async () => {
  const rebuilt = join(await tempRoot(), 'md5x4-wasm.ts');
  await promisify(execFile)('bash', [join(MD5_DIR, 'build-wasm.sh'), rebuilt]).catch((error: { stderr?: string }) => {
    throw new Error(
      `build-wasm.sh failed (needs clang and wasm-ld: apt-get install clang lld): ${error.stderr ?? String(error)}`,
    );
  });
  // Compared as text: a difference shows where the base64 lines part.
  expect(readFileSync(rebuilt, 'utf8')).toBe(readFileSync(join(MD5_DIR, 'md5x4-wasm.ts'), 'utf8'));
});
