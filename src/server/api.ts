/**
 * The JSON answers of SPEC §6. Each actor is assessed by `assessActor` in the worker pool — the very
 * function `sync` runs, with `sync --dry-run` semantics (it writes nothing) — so statuses are decided in
 * one place, and hashing never runs on the thread that answers requests.
 *
 * Work is bounded three ways. Identical requests coalesce (per id as asked: at most one answer in flight
 * and one waiting, each started after the requests it serves arrived). Single-actor assessments run at
 * most `2 × threads` at once, with at most `MAX_WAITING` queued behind them; more is answered 503, not
 * queued. The actor list is one coalesced scan at `threads` at once, so it never starves the others.
 * And work is saved two ways: an actor's last assessment is reused while its fingerprint stands
 * (reuse.ts), and work queued for clients that have all gone is dropped before it starts.
 */
import { sep } from 'node:path';
import pLimit from 'p-limit';
import type { Assessment } from '../../workers/assess.js';
import type { Actor } from '../engine/discover.js';
import type { WorkerPool } from '../engine/pool.js';
import { isInside, type DataRoot } from '../engine/root.js';
import { actorScanner, findActor, sharedProblem, type ActorScanner } from './actors.js';
import { findBaseImage } from './base-image.js';
import { coalesce } from './coalesce.js';
import { busy, unreadable } from './http-errors.js';
import { NO_STUDIO_FACTS } from '../manifest/studio.js';
import { assessmentReuse } from './reuse.js';
import { changeWatch, type ChangeWatch, type WatchOptions } from './watch.js';
import {
  ActorRowSchema,
  HealthSchema,
  TrainingDataSchema,
  type ActorList,
  type ActorRow,
  type TrainingData,
} from './schema.js';
import { studioActorsReader, studioList } from './studio-actors.js';
import { actorRowOf, trainingDataOf } from './training-data.js';

/** Single-actor assessments allowed to wait for a slot; beyond this a request is answered 503. */
export const MAX_WAITING = 64;

export interface Api {
  /**
   * `GET /api/actors/:actorId/training-data`; `selector` is the decoded, validated id; `signal` aborts
   * when the client has gone (work queued for it alone is then dropped).
   */
  trainingData(selector: string, signal?: AbortSignal): Promise<TrainingData>;
  /** `GET /api/actors`; `signal` as for `trainingData`. */
  actorList(signal?: AbortSignal): Promise<ActorList>;
  /** `GET /healthz`. */
  health(): { status: 'ok' };
  /** The one actor `selector` (decoded) names; 404/409 as `findActor`. */
  actor(selector: string): Promise<Actor>;
  /** Stops the change watches. */
  close(): void;
}

export function createApi(data: DataRoot, pool: Pick<WorkerPool, 'assess' | 'threads'>, watching?: WatchOptions): Api {
  const watch = changeWatch(data, watching);
  const scanner = actorScanner(data, watch);
  const actorNamed = (selector: string) => findActor(scanner, selector);
  const readStudio = studioActorsReader(data);
  const assessor = actorAssessor(data, pool, watch);
  const answer = trainingDataAnswers(data, actorNamed, assessor);
  const listAll = actorRows(data, scanner, assessor);
  return {
    trainingData: answer,
    async actorList(signal) {
      // A change written before the request was sent shows in its answer: the kernel queued its inotify event
      // before the request's bytes left the client, so the poll that read the request (or an earlier one)
      // found the inotify descriptor ready too, and the check phase after that poll runs after its events.
      await new Promise((resolve) => setImmediate(resolve));
      const [{ actors, rows }, studio] = await Promise.all([listAll(undefined, signal), readStudio()]);
      return studioList(studio, actors, rows);
    },
    health() {
      return HealthSchema.parse({ status: 'ok' });
    },
    actor: actorNamed,
    close: () => watch.close(),
  };
}

/** Assessments in the pool, reused while the actor's fingerprint stands (reuse.ts), bounded as the header says. */
interface Assessor {
  /** One actor for a training-data answer; 503 when `MAX_WAITING` already wait. */
  one(actor: Actor, signal: AbortSignal): Promise<Assessment>;
  /** Each actor for the list, in order: kept ones as they are, others at `threads` at once. */
  many(actors: Actor[], signal: AbortSignal): Array<Assessment | Promise<Assessment>>;
}

function actorAssessor(data: DataRoot, pool: Pick<WorkerPool, 'assess' | 'threads'>, watch: ChangeWatch): Assessor {
  const single = pLimit(pool.threads * 2);
  const scan = pLimit(pool.threads);
  const reuse = assessmentReuse(data, watch);
  // Called when a slot is free: nothing starts for clients that have all gone.
  const assess = async (actor: Actor, signal: AbortSignal): Promise<Assessment> => {
    signal.throwIfAborted();
    // keepLegacy: the answer must not count a response.json as something to retire; verify: trust stat
    // tokens; explain: the entries themselves are the answer; settle: what reuse.ts keeps.
    const assessment = await pool.assess({
      actor,
      data,
      verify: false,
      keepLegacy: true,
      explain: true,
      settle: true,
      now: new Date().toISOString(),
    });
    reuse.keep(actor, assessment);
    return assessment;
  };
  return {
    async one(actor, signal) {
      const kept = reuse.one(actor);
      if (kept) return kept;
      if (single.pendingCount >= MAX_WAITING) throw busy();
      return single(() => assess(actor, signal));
    },
    many(actors, signal) {
      const kept = reuse.many(actors);
      return actors.map((actor, i) => kept[i] ?? scan(() => assess(actor, signal)));
    },
  };
}

/** `GET /api/actors/:actorId/training-data`, coalesced per id as asked. */
function trainingDataAnswers(
  data: DataRoot,
  actorNamed: (selector: string) => Promise<Actor>,
  assessor: Assessor,
): Api['trainingData'] {
  // Derived once per assessment, checked once when made: a reused assessment's answer is the same.
  const answers = new WeakMap<Assessment, { base: string; answer: TrainingData }>();
  // Keyed by the id as asked: a burst of identical requests reaches this synchronously, so it coalesces.
  return coalesce(
    (selector: string) => selector,
    async (selector: string, signal): Promise<TrainingData> => {
      const actor = await actorNamed(selector);
      const [baseImage, assessment] = await Promise.all([
        findBaseImage(actor, data.actorsReal),
        assessor.one(actor, signal),
      ]);
      const failure = failureOf(assessment, data);
      if (failure) throw unreadable(`actor ${actor.name} cannot be read: ${failure}`);
      const base = JSON.stringify(baseImage);
      const last = answers.get(assessment);
      if (last?.base === base) return last.answer;
      const made = TrainingDataSchema.parse(trainingDataOf(actor, assessment, baseImage));
      answers.set(assessment, { base, answer: made });
      return made;
    },
  );
}

/** Every actor's row for `GET /api/actors`: one coalesced scan. */
function actorRows(
  data: DataRoot,
  scanner: ActorScanner,
  assessor: Assessor,
): (arg: undefined, signal?: AbortSignal) => Promise<{ actors: Actor[]; rows: ActorRow[] }> {
  // Derived once per assessment, checked once when made: a reused assessment's row is the same (bench/README.md).
  // The studio's entries are checked when read: the whole list (a megabyte at 289 actors) is not parsed again.
  const rows = new WeakMap<Assessment, ActorRow>();
  const rowOf = (actor: Actor, assessment: Assessment): ActorRow => {
    const failure = failureOf(assessment, data);
    const row = ActorRowSchema.parse(
      failure
        ? actorRowOf(actor, null, NO_STUDIO_FACTS, failure)
        : actorRowOf(actor, trainingDataOf(actor, assessment, null), assessment.studio, null),
    );
    rows.set(assessment, row);
    return row;
  };
  return coalesce(
    () => 'all',
    async (_: undefined, signal): Promise<{ actors: Actor[]; rows: ActorRow[] }> => {
      const found = await scanner.watched();
      const actors = found.actors.filter((actor) => sharedProblem(actor, found) === null);
      const planned = assessor.many(actors, signal);
      const assessments = new Map(actors.map((actor, i) => [actor.name, planned[i]!]));
      const listed = await Promise.all(
        found.actors.map(async (actor) => {
          const assessment = assessments.get(actor.name);
          if (assessment === undefined)
            return ActorRowSchema.parse(actorRowOf(actor, null, NO_STUDIO_FACTS, sharedProblem(actor, found)));
          const done = await assessment;
          return rows.get(done) ?? rowOf(actor, done);
        }),
      );
      return { actors: found.actors, rows: listed };
    },
  );
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
  const elsewhere = [
    [data.actorsDir, '<actors-dir>'],
    [data.actorsReal, '<actors-dir>'],
    [data.manifestsDir, '<manifests-dir>'],
    [data.manifestsReal, '<manifests-dir>'],
  ] as const;
  let out = text;
  for (const [dir, name] of elsewhere)
    if (!isInside(dir, data.root) && !isInside(dir, data.rootReal)) out = out.split(dir + sep).join(`${name}/`);
  return out
    .split(data.root + sep)
    .join('')
    .split(data.rootReal + sep)
    .join('');
}
