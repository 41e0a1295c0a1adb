/**
 * Children that run as an unprivileged user, for the tests where file modes must count: root reads and
 * writes anything, so as root (CI's user) those children drop to uid/gid 65534 (`nobody`; no passwd
 * entry is needed). That user often cannot read this checkout (under /root, or inside a 0700 folder), so
 * as root the children load a copy of the build and of the few packages it loads at run time, made in a
 * world-readable temp folder on first use and removed after the test file.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';

const CHECKOUT = resolve(import.meta.dirname, '../..');
/**
 * What the build imports from node_modules outside the AWS SDK (loaded only by the S3 commands): the
 * bundle in dist/src leaves piscina out (zod: tools and older layouts). Their dependencies come along.
 */
const RUNTIME_PACKAGES = ['piscina', 'zod'];

/** The user the children run as: uid/gid 65534 when this process is root, else this process's own. */
export const unprivileged: { uid: number; gid: number } | undefined =
  process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;

let copy: string | undefined;

afterAll(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
  copy = undefined;
});

/**
 * The path of a built file (`dist/src/cli/main.js`) that the `unprivileged` user can load: the checkout's
 * own when no user change is needed, else the world-readable copy's.
 */
export function builtForUnprivileged(path: string): string {
  if (!unprivileged) return join(CHECKOUT, path);
  copy ??= readableCopy();
  return join(copy, path);
}

function readableCopy(): string {
  const dist = join(CHECKOUT, 'dist');
  if (!existsSync(join(dist, 'src', 'cli', 'main.js')))
    throw new Error(`${dist} has no build: run npm run build first`);
  const dir = mkdtempSync(join(tmpdir(), 'actor-sync-unprivileged-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  cpSync(dist, join(dir, 'dist'), { recursive: true });
  for (const name of packageClosure(RUNTIME_PACKAGES)) {
    cpSync(join(CHECKOUT, 'node_modules', name), join(dir, 'node_modules', name), { recursive: true });
  }
  // mkdtemp makes the folder 0700, and a umask of 077 would make the copies unreadable too.
  chmodSync(dir, 0o755);
  const chmod = spawnSync('chmod', ['-R', 'a+rX', dir], { encoding: 'utf8' });
  if (chmod.status !== 0) throw new Error(`chmod -R a+rX ${dir} failed: ${chmod.stderr}`);
  return dir;
}

/** `names` and every package they depend on (optional ones when installed), as found in node_modules. */
function packageClosure(names: string[]): Set<string> {
  const found = new Set<string>();
  const queue = [...names];
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    if (found.has(name)) continue;
    const manifest = join(CHECKOUT, 'node_modules', name, 'package.json');
    if (!existsSync(manifest)) {
      if (names.includes(name)) throw new Error(`${manifest} is missing: run npm ci first`);
      continue; // an optional dependency for another platform
    }
    found.add(name);
    const json = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: object; optionalDependencies?: object };
    queue.push(...Object.keys({ ...json.dependencies, ...json.optionalDependencies }));
  }
  return found;
}
