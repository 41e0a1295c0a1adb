/**
 * Change notification for the actor list (issue 15): inotify through `fs.watch` (non-recursive) on each
 * actor's folder and training_data folder, the actors folder and the manifests folder, so an actor nothing
 * happened to is answered again without a stat. Any doubt means "check by stats": a watch that could not be
 * set (the inotify limit, a missing folder), that errored or closed, or a mark older than `TRUST_MS`.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Actor } from '../engine/discover.js';
import type { DataRoot } from '../engine/root.js';

/**
 * How long a check by stats is trusted without another: a network file system sends no event for another
 * machine's writes, so every actor is checked by stats at least this often.
 */
export const TRUST_MS = 2000;

/** What `mark` returns: equal marks, no event (and no lost watch) in between. */
export type Mark = string;

export interface ChangeWatch {
  /** How long a check by stats stands with no event (`TRUST_MS` unless a test says otherwise). */
  trustMs: number;
  /**
   * Sets the actor's watches when missing or when something happened since; undefined when they (or the
   * shared ones) cannot be trusted. Take it before checking the actor by stats: a later equal mark means no
   * event since, so that check still stands.
   */
  mark(actor: Actor): Mark | undefined;
  /** The same for the folder scan: actors or manifests added, removed, renamed, or a training_data replaced. */
  structure(): Mark | undefined;
  /** Stops watching actors not in `names` (removed or renamed). */
  keepOnly(names: Set<string>): void;
  close(): void;
}

/** `fs.watch`'s shape, so a test can make a watch fail. */
export type WatchFn = (path: string, listener: (event: string, filename: string | null) => void) => FSWatcher;

/** Test-only: another `fs.watch` (one that fails, or never reports) and another `TRUST_MS`. */
export interface WatchOptions {
  watch?: WatchFn;
  trustMs?: number;
}

type OnEvent = (event: string, filename: string | null, record: Watched) => void;

interface Watched {
  id: number;
  /** False once a watcher errored or closed (for an actor's own: once any event arrived). */
  healthy: boolean;
  watchers: FSWatcher[];
}

export function changeWatch(data: DataRoot, { watch = fsWatch, trustMs = TRUST_MS }: WatchOptions = {}): ChangeWatch {
  let next = 0;
  const actors = new Map<string, Watched>();
  const byManifest = new Map<string, string>();
  let shared: Watched | undefined;
  let structure = 0;

  const open: Open = (paths, onEvent) => opened(watch, (next += 1), paths, onEvent);

  const sharedWatch = (): Watched => {
    if (shared?.healthy) return shared;
    drop(shared);
    shared = open([data.actorsReal, data.manifestsReal], (event, filename, own) => {
      // Which file is unknown, or a watched folder itself moved or removed (named by its own name): every actor to stats.
      if (filename === null || filename === basename(data.actorsReal) || filename === basename(data.manifestsReal))
        return void (own.healthy = false);
      // In the actors folder an actor folder by its name; in the manifests folder a manifest by its file name.
      const name = actors.has(filename) ? filename : byManifest.get(filename);
      if (name === undefined || event === 'rename') structure += 1;
      const record = name === undefined ? undefined : actors.get(name);
      if (record) record.healthy = false;
    });
    return shared;
  };

  return {
    trustMs,
    mark(actor) {
      // A lost shared watch is set again by `structure()`, once a list, not here once an actor (a manifests
      // folder not made yet would cost 289 tries a list).
      const common = shared ?? sharedWatch();
      let record = actors.get(actor.name);
      if (record === undefined || !record.healthy) {
        // Set again after any event: the folder watched may be the one that was replaced.
        drop(record);
        record = actorWatches(open, actor, () => (structure += 1));
        actors.set(actor.name, record);
        const manifest = manifestFile(data, actor);
        if (manifest !== undefined) byManifest.set(manifest, actor.name);
      }
      return common.healthy && record.healthy ? `${common.id}.${record.id}` : undefined;
    },
    structure() {
      const common = sharedWatch();
      return common.healthy ? `${common.id}.${structure}` : undefined;
    },
    keepOnly(names) {
      for (const [name, record] of actors) if (!names.has(name)) drop(record), actors.delete(name);
      for (const [file, name] of byManifest) if (!names.has(name)) byManifest.delete(file);
    },
    close() {
      for (const record of actors.values()) drop(record);
      drop(shared);
      actors.clear();
    },
  };
}

type Open = (paths: string[], onEvent: OnEvent) => Watched;

/** The actor's folder and training_data watched: unhealthy after any event, `rescan` when the scan may differ. */
function actorWatches(open: Open, actor: Actor, rescan: () => void): Watched {
  return open([actor.dir, actor.trainingDir], (_, filename, own) => {
    own.healthy = false;
    // A training_data (or the actor folder itself) replaced or removed changes what the scan found.
    if (filename === null || filename === 'training_data' || filename === basename(actor.dir)) rescan();
  });
}

/** The actor's manifest's file name when it is in the watched manifests folder (its events name it so). */
function manifestFile(data: DataRoot, actor: Actor): string | undefined {
  const folder = dirname(actor.manifestPath);
  return folder === data.manifestsDir || folder === data.manifestsReal ? basename(actor.manifestPath) : undefined;
}

/** Watches on `paths`, healthy until one errors or closes; unhealthy at once when one cannot be set. */
function opened(watch: WatchFn, id: number, paths: string[], onEvent: OnEvent): Watched {
  const record: Watched = { id, healthy: true, watchers: [] };
  const lost = () => (record.healthy = false);
  try {
    for (const path of paths) {
      const watcher = watch(path, (event, filename) => onEvent(event, filename, record));
      record.watchers.push(watcher);
      // An errored watch is dead: close it, and its actors go back to stats (never a stale answer).
      watcher.on('error', () => (lost(), watcher.close()));
      watcher.on('close', lost);
    }
  } catch {
    lost(); // ENOSPC (the inotify limit), ENOENT, EACCES: stats
  }
  return record;
}

function drop(record: Watched | undefined): void {
  for (const watcher of record?.watchers ?? []) watcher.close();
}
