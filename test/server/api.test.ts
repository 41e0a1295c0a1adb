/**
 * The API's bounds on work, with a pool whose assessments the test finishes by hand: requests for one
 * actor coalesce, single-actor assessments are bounded and a burst beyond the waiting room is answered
 * 503 instead of queued, and the actor list assesses at most `threads` actors at once.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Assessment, AssessTask } from '../../workers/assess.js';
import { emptyReport } from '../../src/engine/report.js';
import { resolveDataRoot } from '../../src/engine/root.js';
import { createApi, MAX_WAITING } from '../../src/server/api.js';
import { gone, HttpError } from '../../src/server/http-errors.js';
import { statisticsOf } from '../../src/shared/classify.js';
import { NO_STUDIO_FACTS } from '../../src/manifest/studio.js';
import { tempRoot } from '../helpers/root.js';

/** A fake pool: each assessment waits until the test finishes it; it records what ran and how many at once. */
function handPool(threads: number) {
  const pending: { task: AssessTask; finish: () => void }[] = [];
  const tasks: AssessTask[] = [];
  let inFlight = 0;
  let most = 0;
  let started = 0;
  let open = false;
  const onStart: (() => void)[] = [];
  const assess = (task: AssessTask) =>
    new Promise<Assessment>((resolve) => {
      started += 1;
      tasks.push(task);
      inFlight += 1;
      most = Math.max(most, inFlight);
      const run = started;
      const finish = () => {
        inFlight -= 1;
        resolve({
          report: { ...emptyReport(task.actor, 'unchanged'), statistics: statisticsOf([]) },
          entries: [],
          tracked: [],
          good: {},
          manifestUpdated: `run ${run}`,
          studio: NO_STUDIO_FACTS,
        });
      };
      if (open) finish();
      else pending.push({ task, finish });
      onStart.splice(0).forEach((wake) => wake());
    });
  /** Finishes every assessment held, and from now on each one as it starts. */
  const release = () => {
    open = true;
    pending.splice(0).forEach((held) => held.finish());
  };
  /** Settles once `n` assessments have started in all. */
  const started$ = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (started >= n ? resolve() : onStart.push(check));
      check();
    });
  return { pool: { threads, assess }, pending, tasks, started$, release, stats: () => ({ started, most, inFlight }) };
}

async function rootWithActors(count: number) {
  const root = await tempRoot();
  for (let i = 0; i < count; i += 1) await mkdir(join(root, 'data', 'actors', `${String(i).padStart(4, '0')}_actor`));
  return resolveDataRoot({ root });
}

describe('bounded work', () => {
  it('a burst of requests for one actor costs two assessments, each answer started after its request', async () => {
    const data = await rootWithActors(1);
    const hand = handPool(2);
    const api = createApi(data, hand.pool);
    const first = api.trainingData('0000');
    await hand.started$(1);
    const burst = Array.from({ length: 30 }, () => api.trainingData('0000'));
    hand.pending.shift()!.finish();
    expect((await first).manifest_updated).toBe('run 1');
    await hand.started$(2);
    hand.pending.shift()!.finish();
    const answers = await Promise.all(burst);
    expect(
      new Set(answers.map((a) => a.manifest_updated)),
      'nobody got the run already under way when it asked',
    ).toEqual(new Set(['run 2']));
    expect(hand.stats()).toMatchObject({ started: 2, most: 1 });
    for (const task of hand.tasks) expect(task).toMatchObject({ verify: false, keepLegacy: true, explain: true });
  });

  it(`single actors: at most 2 × threads assessed at once and ${MAX_WAITING} waiting; beyond that 503, nothing queued`, async () => {
    const threads = 1;
    const total = threads * 2 + MAX_WAITING + 3;
    const data = await rootWithActors(total);
    const hand = handPool(threads);
    const api = createApi(data, hand.pool);
    const requests = Array.from({ length: total }, (_, i) => api.trainingData(String(i)));
    // Three refusals arrive while every admitted request is still held by the hand pool.
    const refused = await Promise.all([1, 2, 3].map((k) => nthRejection(requests, k)));
    for (const error of refused) {
      expect(error).toBeInstanceOf(HttpError);
      expect((error as HttpError).status).toBe(503);
      expect((error as HttpError).headers['Retry-After']).toBe('1');
    }
    expect(hand.stats().inFlight).toBe(threads * 2);
    // Finish everything admitted, one at a time as each starts.
    const admitted = threads * 2 + MAX_WAITING;
    for (let done = 0; done < admitted; done += 1) {
      await hand.started$(done + 1);
      hand.pending.shift()!.finish();
    }
    const outcomes = await Promise.allSettled(requests);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(threads * 2 + MAX_WAITING);
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(3);
    expect(hand.stats().most).toBe(threads * 2);
    expect(hand.stats().started).toBe(threads * 2 + MAX_WAITING);
  });

  it('the actor list assesses at most `threads` actors at once, and concurrent lists share scans', async () => {
    const data = await rootWithActors(6);
    const hand = handPool(2);
    const api = createApi(data, hand.pool);
    const lists = Array.from({ length: 5 }, () => api.actorList());
    // Finish assessments one at a time as they start, until both scans (the first and the shared next) are done.
    for (let done = 0; done < 12; done += 1) {
      await hand.started$(done + 1);
      expect(hand.stats().inFlight).toBeLessThanOrEqual(2);
      hand.pending.shift()!.finish();
    }
    const answers = await Promise.all(lists);
    for (const answer of answers)
      expect(answer.map((a) => a.actor_id)).toEqual(['0000', '0001', '0002', '0003', '0004', '0005']);
    expect(hand.stats().started).toBe(12);
    expect(hand.stats().most).toBe(2);
  });
});

describe('work for clients that have gone', () => {
  it('a list whose client has gone drops the actors not yet started', async () => {
    const data = await rootWithActors(6);
    const hand = handPool(2);
    const api = createApi(data, hand.pool);
    const client = new AbortController();
    const list = api.actorList(client.signal);
    await hand.started$(2);
    client.abort(gone());
    hand.release();
    expect(await list.catch((error: unknown) => error)).toMatchObject({ status: 499 });
    expect(hand.stats().started, 'the 4 actors queued behind the first 2 never started').toBe(2);
    expect(await api.actorList()).toHaveLength(6);
  });

  it('a single actor queued behind busy slots is dropped when its client goes; the others are answered', async () => {
    const data = await rootWithActors(3);
    const hand = handPool(1);
    const api = createApi(data, hand.pool);
    const busy = [api.trainingData('0'), api.trainingData('1')];
    await hand.started$(2);
    const client = new AbortController();
    const queued = api.trainingData('2', client.signal);
    client.abort(gone());
    hand.release();
    expect(await queued.catch((error: unknown) => error)).toMatchObject({ status: 499 });
    expect((await Promise.all(busy)).map((answer) => answer.actor_id)).toEqual(['0000', '0001']);
    expect(hand.tasks.map((task) => task.actor.name)).toEqual(['0000_actor', '0001_actor']);
  });

  it('an answer shared by two clients goes on while one of them remains', async () => {
    const { hand, first, clients, answers } = await twoSharing();
    clients[0]!.abort(gone());
    hand.release();
    await first;
    expect((await Promise.all(answers)).map((answer) => answer.manifest_updated)).toEqual(['run 2', 'run 2']);
  });

  it('an answer shared by two clients is dropped when both have gone', async () => {
    const { hand, first, clients, answers } = await twoSharing();
    for (const client of clients) client.abort(gone());
    hand.release();
    await first;
    for (const answer of answers) expect(await answer.catch((error: unknown) => error)).toMatchObject({ status: 499 });
    expect(hand.stats().started).toBe(1);
  });
});

/** An answer for actor 0000 under way (held), and two clients asking for it with signals: they share the next run. */
async function twoSharing() {
  const data = await rootWithActors(1);
  const hand = handPool(1);
  const api = createApi(data, hand.pool);
  const first = api.trainingData('0');
  await hand.started$(1);
  const clients = [new AbortController(), new AbortController()];
  const answers = clients.map((client) => api.trainingData('0', client.signal));
  return { hand, first, clients, answers };
}

/** Settles with the error of the k-th request to be rejected. */
function nthRejection(requests: Promise<unknown>[], k: number): Promise<unknown> {
  return new Promise((resolve) => {
    let seen = 0;
    for (const request of requests) {
      request.catch((error: unknown) => {
        seen += 1;
        if (seen === k) resolve(error);
      });
    }
  });
}
