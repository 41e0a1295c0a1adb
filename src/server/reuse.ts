/**
 * Each actor's last assessment, reused while the fingerprint the sync cache keeps for it still stands
 * (fingerprint.ts: the same manifest and prompt_metadata.json bytes, the same images with the same size,
 * mtime and inode, each older than the manifest, no response.json). Anything else is a miss, and only that
 * actor is assessed again. So a warm `GET /api/actors` costs the stats, not 289 assessments.
 */
import { statSync } from 'node:fs';
import type { Assessment } from '../../workers/assess.js';
import type { Actor } from '../engine/discover.js';
import { settledState, unchangedSince, type CacheEntry, type SettledState } from '../cache/fingerprint.js';
import type { ChangeWatch, Mark } from './watch.js';

export interface Reuse {
  /** The actor's last assessment while it still stands. */
  one(actor: Actor): Assessment | undefined;
  /**
   * The same for each of `actors`, without a stat for an actor whose watches saw nothing since its last check
   * by stats (made within `TRUST_MS`, watch.ts). Every actor is marked, kept answer or not: its folder watch is
   * what tells the scan that its training_data was replaced. Forgets actors not listed.
   */
  many(actors: Actor[]): (Assessment | undefined)[];
  /** Keeps an assessment made with `settle: true` when it can be reused; else forgets the actor's last one. */
  keep(actor: Actor, assessment: Assessment): void;
}

/** Files up to this size are read and hashed on the main thread for an actor's check. */
const SMALL_BYTES = 1024 * 1024;

interface Kept {
  entry: CacheEntry;
  assessment: Assessment;
  /** What the last check that said yes saw: while the files' stats are as it saw them, the answer is yes again. */
  state?: SettledState;
  /** The watch's mark taken before the last check by stats that said yes, and when (`performance.now()`) it ran. */
  checked?: { mark: Mark; at: number };
}

/**
 * Checked in this thread, synchronously, from stats (the manifest and prompt_metadata.json read and hashed
 * only until their tokens can be trusted): a list 132.7 → 72.6 ms at load 8 against the checks in the
 * worker threads, whose messages cost more than their parallel stats gain (bench/README.md, issue 15).
 */
export function assessmentReuse(data: Parameters<typeof settledState>[1], watch?: ChangeWatch): Reuse {
  const kept = new Map<string, Kept>();

  const stands = (actor: Actor, last: Kept): boolean => {
    if (last.state !== undefined && unchangedSince(actor, last.state)) return true;
    // Reading and hashing a manifest of up to 64 MB here would hold up every other request: an actor with a
    // large one is assessed again in a worker instead.
    if (!smallFiles(actor)) return false;
    last.state = settledState(actor, data, last.entry);
    return last.state !== undefined;
  };

  return {
    one(actor) {
      const last = kept.get(actor.name);
      return last && stands(actor, last) ? last.assessment : undefined;
    },

    many(actors) {
      const names = new Set(actors.map((actor) => actor.name));
      for (const name of kept.keys()) if (!names.has(name)) kept.delete(name);
      // Monotonic: a wall clock stepped back would make a check look younger than it is.
      const now = performance.now();
      return actors.map((actor) => {
        // Taken before the stats: an event after it changes the next mark, so this check is never trusted past a change.
        const mark = watch?.mark(actor);
        const last = kept.get(actor.name);
        if (last === undefined) return undefined;
        if (mark !== undefined && last.checked?.mark === mark && now - last.checked.at < watch!.trustMs)
          return last.assessment;
        if (!stands(actor, last)) return undefined;
        last.checked = mark === undefined ? undefined : { mark, at: now };
        return last.assessment;
      });
    },

    keep(actor, assessment) {
      // An assessment that would write the manifest settled on the bytes it would write, not on those on disk.
      if (assessment.settled && assessment.commit === undefined)
        kept.set(actor.name, { entry: assessment.settled, assessment });
      else kept.delete(actor.name);
    },
  };
}

function smallFiles(actor: Actor): boolean {
  return [actor.manifestPath, `${actor.trainingDir}/prompt_metadata.json`].every(
    (path) => (statSync(path, { throwIfNoEntry: false })?.size ?? 0) <= SMALL_BYTES,
  );
}
