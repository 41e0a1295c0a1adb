/**
 * The JSON answers of SPEC §6. Each actor is assessed by `assessActor` in the worker pool — the very
 * function `sync` runs, with `sync --dry-run` semantics (it writes nothing) — so statuses are decided in
 * one place, and hashing never runs on the thread that answers requests.
 *
 * Work is bounded three ways. Identical requests coalesce (per id as asked: at most one answer in flight
 * and one waiting, each started after the requests it serves arrived). Single-actor assessments run at
 * most `2 × threads` at once, with at most `MAX_WAITING` queued behind them; more is answered 503, not
 * queued. The actor list is one coalesced scan at `threads` at once, so it never starves the others.
 */
import { sep } from 'node:path';
import pLimit from 'p-limit';
import type { Assessment } from '../assess.js';
import type { Actor } from '../discover.js';
import type { WorkerPool } from '../pool.js';
import { isInside, type DataRoot } from '../root.js';
import { actorScanner, findActor, sharedProblem } from './actors.js';
import { findBaseImage } from './base-image.js';
import { coalesce } from './coalesce.js';
import { busy, unreadable } from './errors.js';
import { NO_STUDIO_FACTS } from '../manifest/studio.js';
import { ActorRowSchema, HealthSchema, TrainingDataSchema, type ActorList, type ActorRow, type TrainingData } from './schema.js';
import { studioActorsReader, studioList } from './studio-actors.js';
import { actorRowOf, trainingDataOf } from './training-data.js';

/** Single-actor assessments allowed to wait for a slot; beyond this a request is answered 503. */
export const MAX_WAITING = 64;

export interface Api {
  /** `GET /api/actors/:actorId/training-data`; `selector` is the decoded, validated id. */
  trainingData(selector: string): Promise<TrainingData>;
  /** `GET /api/actors`. */
  actorList(): Promise<ActorList>;
  /** `GET /healthz`. */
  health(): { status: 'ok' };
  /** The one actor `selector` (decoded) names; 404/409 as `findActor`. */
  actor(selector: string): Promise<Actor>;
}

export function createApi(data: DataRoot, pool: Pick<WorkerPool, 'assess' | 'threads'>): Api {
  const single = pLimit(pool.threads * 2);
  const scan = pLimit(pool.threads);
  const scanActors = actorScanner(data);
  const actorNamed = (selector: string) => findActor(scanActors, selector);
  const readStudio = studioActorsReader(data);

  const assess = (actor: Actor): Promise<Assessment> =>
    // keepLegacy: the answer must not count a response.json as something to retire; verify: trust stat
    // tokens; explain: the entries themselves are the answer.
    pool.assess({ actor, data, verify: false, keepLegacy: true, explain: true, now: new Date().toISOString() });

  const assessOne = async (actor: Actor): Promise<Assessment> => {
    if (single.pendingCount >= MAX_WAITING) throw busy();
    return single(() => assess(actor));
  };

  // Keyed by the id as asked: a burst of identical requests reaches this synchronously, so it coalesces.
  const answer = coalesce(
    (selector: string) => selector,
    async (selector: string): Promise<TrainingData> => {
      const actor = await actorNamed(selector);
      const [assessment, baseImage] = await Promise.all([assessOne(actor), findBaseImage(actor, data.actorsReal)]);
      const failure = failureOf(assessment, data);
      if (failure) throw unreadable(`actor ${actor.name} cannot be read: ${failure}`);
      return TrainingDataSchema.parse(trainingDataOf(actor, assessment, baseImage));
    },
  );

  const listAll = coalesce(
    () => 'all',
    async (): Promise<{ actors: Actor[]; rows: ActorRow[] }> => {
      const found = await scanActors();
      const { actors } = found;
      const rows = await Promise.all(
        actors.map((actor) =>
          scan(async () => {
            const problem = sharedProblem(actor, found);
            if (problem) return actorRowOf(actor, null, NO_STUDIO_FACTS, problem);
            const assessment = await assess(actor);
            const failure = failureOf(assessment, data);
            return failure ? actorRowOf(actor, null, NO_STUDIO_FACTS, failure) : actorRowOf(actor, trainingDataOf(actor, assessment, null), assessment.studio, null);
          }),
        ),
      );
      return { actors, rows };
    },
  );

  return {
    trainingData: answer,
    async actorList() {
      const [{ actors, rows }, studio] = await Promise.all([listAll(undefined), readStudio()]);
      // Our rows checked here, the studio's entries when read: the whole list (a megabyte at the studio's 289
      // actors) is not parsed again.
      return studioList(studio, actors, rows.map((row) => ActorRowSchema.parse(row)));
    },
    health() {
      return HealthSchema.parse({ status: 'ok' });
    },
    actor: actorNamed,
  };
}

/** The assessment's errors as one sentence, with paths relative to the data root; null when it succeeded. */
function failureOf(assessment: Assessment, data: DataRoot): string | null {
  const { errors } = assessment.report;
  if (errors.length === 0) return null;
  return errors.map((error) => withinRoot(`${error.file}: ${error.reason}`, data)).join('; ');
}

/**
 * Paths under the data root, relative to it, as a person reading the error knows the files; those in an
 * actors or manifests folder elsewhere (`--actors-dir`, a symlink to another disk) start with its flag's name.
 */
function withinRoot(text: string, data: DataRoot): string {
  const elsewhere = [[data.actorsDir, '<actors-dir>'], [data.actorsReal, '<actors-dir>'], [data.manifestsDir, '<manifests-dir>'], [data.manifestsReal, '<manifests-dir>']] as const;
  let out = text;
  for (const [dir, name] of elsewhere) if (!isInside(dir, data.root) && !isInside(dir, data.rootReal)) out = out.split(dir + sep).join(`${name}/`);
  return out.split(data.root + sep).join('').split(data.rootReal + sep).join('');
}
