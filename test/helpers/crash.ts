/**
 * The vitest-free half of the crash trials: what `bench/soak.ts` (a plain Node script, which cannot import
 * a module that imports vitest) and the process tests both need. Copies of a data root, manifests read
 * back, leftovers in the manifests folder, commits watched as they land, and the seeded PRNG that makes
 * the kill instants repeatable. `test/helpers/cli.ts` re-exports them for the tests.
 */
import fs from 'node:fs';
import { join, relative } from 'node:path';
import { IMAGE_EXTENSION } from '../../src/engine/discover.js';
import { lockName } from '../../src/engine/shard.js';

/** The lock folder of a whole-root run. */
export const LOCK_NAME = lockName(undefined);

/** mulberry32: a small seeded PRNG, so the same seed draws the same kill instants on every run. */
export function prng(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function manifestsDirOf(root: string): string {
  return join(root, 'data', 'actor_manifests');
}

export function responsePathOf(root: string, actorName: string): string {
  return join(root, 'data', 'actors', actorName, 'training_data', 'response.json');
}

/** A copy of a data root that keeps every file's mtime (manifests record them as `modified_*`). */
export function copyRoot(from: string, to: string): string {
  fs.cpSync(from, to, { recursive: true, preserveTimestamps: true });
  return to;
}

/**
 * Every image under `<root>/data/actors`, relative path → mtime in ns. The generator gives images
 * whole-millisecond mtimes, which a copy keeps exactly.
 */
export function imageMtimes(root: string): Map<string, bigint> {
  const actors = join(root, 'data', 'actors');
  const result = new Map<string, bigint>();
  for (const entry of fs.readdirSync(actors, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !IMAGE_EXTENSION.test(entry.name)) continue;
    const path = join(entry.parentPath, entry.name);
    result.set(relative(actors, path), fs.statSync(path, { bigint: true }).mtimeNs);
  }
  return result;
}

/** Names in the manifests folder that are neither a manifest nor the run lock (temp files, above all). */
export function leftovers(manifestsDir: string): string[] {
  return fs.readdirSync(manifestsDir).filter((name) => !name.endsWith('_manifest.json') && name !== LOCK_NAME);
}

/** Every `*_manifest.json`, parsed; a file that is not valid JSON throws an error naming it. */
export function readManifests(manifestsDir: string): Map<string, any> {
  const result = new Map<string, any>();
  for (const name of fs
    .readdirSync(manifestsDir)
    .filter((n) => n.endsWith('_manifest.json'))
    .sort()) {
    const text = fs.readFileSync(join(manifestsDir, name), 'utf8');
    try {
      result.set(name, JSON.parse(text));
    } catch (error) {
      throw new Error(`${name} is not valid JSON (${(error as Error).message}); it holds ${text.length} characters`);
    }
  }
  return result;
}

/**
 * A manifest without what legitimately differs between two runs on two copies of one root: the commit
 * time, and each entry's stat token (`mtime_ns`, `inode`; the copy has new inodes). `modified_*` stay:
 * the copies keep mtimes.
 */
export function comparable(manifest: any): any {
  const copy = structuredClone(manifest);
  delete copy.training_data_updated;
  for (const entry of copy.training_data ?? []) {
    delete entry.mtime_ns;
    delete entry.inode;
  }
  return copy;
}

/**
 * Calls `onCommit` with the number of distinct manifests committed so far in `manifestsDir`, each time a
 * manifest is renamed into place (a commit's rename shows up as an event for the manifest's own name).
 * Returns a function that stops watching.
 */
export function watchCommits(manifestsDir: string, onCommit: (count: number, name: string) => void): () => void {
  const committed = new Set<string>();
  const watcher = fs.watch(manifestsDir, (_event, name) => {
    if (typeof name !== 'string' || !name.endsWith('_manifest.json') || committed.has(name)) return;
    committed.add(name);
    onCommit(committed.size, name);
  });
  return () => watcher.close();
}
