/**
 * Each actor's last assessment, reused while the fingerprint the sync cache keeps for it still stands
 * (fingerprint.ts: the same manifest and prompt_metadata.json bytes, the same images with the same size,
 * mtime and inode, each older than the manifest, no response.json). Anything else is a miss, and only that
 * actor is assessed again. So a warm `GET /api/actors` costs the stats, not 289 assessments.
 */
import { statSync } from 'node:fs';
import type { Assessment } from '../assess.js';
import type { Actor } from '../discover.js';
import { stillSettled, type CacheEntry, type SettledTask } from '../fingerprint.js';
import type { WorkerPool } from '../pool.js';
import type { DataRoot } from '../root.js';

export interface Reuse {
  /** The actor's last assessment while it still stands, checked in this thread (one actor's stats) unless its files are large. */
  one(actor: Actor): Promise<Assessment | undefined>;
  /** The same for each of `actors`, checked in the worker threads, a slice each. Forgets actors not listed. */
  many(actors: Actor[]): Promise<(Assessment | undefined)[]>;
  /** Keeps an assessment made with `settle: true` when it can be reused; else forgets the actor's last one. */
  keep(actor: Actor, assessment: Assessment): void;
}

/** Files up to this size are read and hashed on the main thread for one actor's check. */
const SMALL_BYTES = 1024 * 1024;

interface Kept {
  entry: CacheEntry;
  assessment: Assessment;
}

export function assessmentReuse(data: DataRoot, pool: Pick<WorkerPool, 'threads' | 'settled'>): Reuse {
  const kept = new Map<string, Kept>();
  const check = (task: SettledTask) => (pool.settled ? pool.settled(task) : Promise.resolve(task.actors.map(({ actor, entry }) => stillSettled(actor, data, entry))));

  return {
    async one(actor) {
      const last = kept.get(actor.name);
      if (last === undefined) return undefined;
      // Reading and hashing a manifest of up to 64 MB here would hold up every other request: a worker does it.
      const small = [actor.manifestPath, `${actor.trainingDir}/prompt_metadata.json`].every((path) => (statSync(path, { throwIfNoEntry: false })?.size ?? 0) <= SMALL_BYTES);
      const [stands] = small ? [stillSettled(actor, data, last.entry)] : await check({ data, actors: [{ actor, entry: last.entry }] });
      return stands ? last.assessment : undefined;
    },

    async many(actors) {
      const names = new Set(actors.map((actor) => actor.name));
      for (const name of kept.keys()) if (!names.has(name)) kept.delete(name);
      const candidates = actors.flatMap((actor) => {
        const last = kept.get(actor.name);
        return last ? [{ actor, last }] : [];
      });
      // Two slices a thread: the stats of one slice take about as long as another's, give or take a miss.
      const size = Math.ceil(candidates.length / (pool.threads * 2));
      const slices = Array.from({ length: size === 0 ? 0 : Math.ceil(candidates.length / size) }, (_, i) => candidates.slice(i * size, (i + 1) * size));
      const answers = await Promise.all(slices.map((slice) => check({ data, actors: slice.map(({ actor, last }) => ({ actor, entry: last.entry })) })));
      const standing = new Map<string, Assessment>();
      slices.forEach((slice, i) => slice.forEach(({ actor, last }, j) => answers[i]![j] && standing.set(actor.name, last.assessment)));
      return actors.map((actor) => standing.get(actor.name));
    },

    keep(actor, assessment) {
      // An assessment that would write the manifest settled on the bytes it would write, not on those on disk.
      if (assessment.settled && assessment.commit === undefined) kept.set(actor.name, { entry: assessment.settled, assessment });
      else kept.delete(actor.name);
    },
  };
}
