/** Where the data lives: the data root and its actors and manifests folders (SPEC §2, §4 `--root`). */
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';

export interface RootOptions {
  /** The data root; default the current directory. */
  root?: string;
  /** Default `<root>/data/actors`. */
  actorsDir?: string;
  /** Default `<root>/data/actor_manifests`. */
  manifestsDir?: string;
}

export interface DataRoot {
  root: string;
  /** The root with symlinks resolved: nothing outside it is ever followed. */
  rootReal: string;
  actorsDir: string;
  manifestsDir: string;
  /**
   * The actors folder with symlinks resolved: a trusted root of its own, wherever it is (default or
   * `--actors-dir`, a symlink to another disk or not). Nothing an actor's folder links to outside it is followed.
   */
  actorsReal: string;
  /** The manifests folder with symlinks resolved (as it will be, while it does not exist yet): likewise for manifests. */
  manifestsReal: string;
}

/**
 * How a refusal names a symlink whose real path is outside the actors or the manifests folder (each a
 * trusted root of its own, wherever the data root is): the folder checked, not the data root.
 */
export function leadingOutOf(folder: 'actors' | 'manifests'): string {
  return `a symlink leading out of the ${folder} folder`;
}

/** The folders the options name, defaults applied, absolute; nothing is checked. */
export function rootPaths(options: RootOptions): Pick<DataRoot, 'root' | 'actorsDir' | 'manifestsDir'> {
  const root = resolve(options.root ?? '.');
  return {
    root,
    actorsDir: resolve(root, options.actorsDir ?? 'data/actors'),
    manifestsDir: resolve(root, options.manifestsDir ?? 'data/actor_manifests'),
  };
}

/** Resolves and checks the folders; a missing or wrong one is a usage error (exit 2) that names it. */
export async function resolveDataRoot(options: RootOptions): Promise<DataRoot> {
  const { root, actorsDir, manifestsDir } = rootPaths(options);
  await requireDirectory(root, '--root');
  await requireDirectory(actorsDir, '--actors-dir');
  const manifests = await stat(manifestsDir).catch(() => undefined);
  if (manifests && !manifests.isDirectory())
    throw new UsageError(`${manifestsDir} is not a folder; check --manifests-dir`);
  const [rootReal, actorsReal, manifestsReal] = await Promise.all([
    realpath(root),
    realpath(actorsDir),
    realpathToBe(manifestsDir),
  ]);
  return { root, rootReal, actorsDir, manifestsDir, actorsReal, manifestsReal };
}

/** The real path `path` has, or will have once made: its nearest existing folder's, resolved, with the rest. */
async function realpathToBe(path: string): Promise<string> {
  const real = await realpath(path).catch(() => undefined);
  if (real !== undefined || dirname(path) === path) return real ?? path;
  return join(await realpathToBe(dirname(path)), basename(path));
}

async function requireDirectory(path: string, flag: string): Promise<void> {
  const found = await stat(path).catch(() => undefined);
  if (!found) throw new UsageError(`${path} does not exist; check ${flag}`);
  if (!found.isDirectory()) throw new UsageError(`${path} is not a folder; check ${flag}`);
}

/** True when `path` is `root` or below it (both with symlinks resolved). */
export function isInside(path: string, root: string): boolean {
  return path === root || path.startsWith(root + sep);
}
