/**
 * Where the sync cache (sync-cache.ts) lives, apart from it so that the CLI's entry can look for one without
 * loading the rest.
 */
import { readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { md5Hex } from '../md5/hex.js';
import type { Shard } from '../engine/shard.js';

/**
 * The user's cache folder for this tool: `$XDG_CACHE_HOME/actor-sync`, else `~/.cache/actor-sync`. The cache
 * lives there and not in the data root: it is this machine's (inodes are), and nothing but the manifests
 * belongs in a folder that may be under version control.
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'actor-sync');
}

/** The name every cache of one manifests folder starts with (its real path's MD5), whichever shard wrote it. */
export function cachePrefix(manifestsDirReal: string): string {
  return `sync-cache-${md5Hex(manifestsDirReal)}`;
}

/** The cache file of a run: one per manifests folder and lock, so shards never write each other's. */
export function cachePath(
  manifestsDirReal: string,
  shard: Shard | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const name = `${cachePrefix(manifestsDirReal)}${shard ? `.shard-${shard.index}-of-${shard.count}` : ''}.json`;
  return join(cacheDir(env), name);
}

/**
 * True when the cache file was written after every manifest in the folder last changed (its ctime, which no
 * copy or restore can set back). A run writes its cache after its last commit, so a manifest changed since
 * (a restore, a checkout, an edit) is one the cache does not know: most actors will miss.
 */
export function newerThanManifests(cacheFile: string, manifestsDir: string): boolean {
  try {
    const written = statSync(cacheFile).mtimeMs;
    return readdirSync(manifestsDir).every(
      (name) => !name.endsWith('_manifest.json') || statSync(join(manifestsDir, name)).ctimeMs <= written,
    );
  } catch {
    return false;
  }
}
