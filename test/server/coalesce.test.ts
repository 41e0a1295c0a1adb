/** `coalesce`: per key, one run in flight and one waiting; every caller gets a run that started after it called. */
import { describe, expect, it } from 'vitest';
import { coalesce } from '../../src/server/coalesce.js';

/** A run the test finishes by hand. */
function gatedRuns() {
  const runs: { key: string; started: number; finish: (value?: unknown) => void; fail: (error: Error) => void }[] = [];
  let clock = 0;
  const run = (key: string) =>
    new Promise<{ key: string; started: number }>((resolve, reject) => {
      const started = ++clock;
      runs.push({ key, started, finish: () => resolve({ key, started }), fail: reject });
    });
  return { runs, run, now: () => clock };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('coalesce', () => {
  it('a burst for one key costs two runs; callers during a run share the next one', async () => {
    const { runs, run } = gatedRuns();
    const call = coalesce((key: string) => key, run);
    const first = call('a');
    await tick();
    expect(runs).toHaveLength(1);
    const burst = Array.from({ length: 20 }, () => call('a'));
    await tick();
    expect(runs, 'nobody joins the run already under way').toHaveLength(1);
    runs[0]!.finish();
    expect((await first).started).toBe(1);
    await tick();
    expect(runs).toHaveLength(2);
    runs[1]!.finish();
    for (const result of await Promise.all(burst)) expect(result.started).toBe(2);
    expect(runs).toHaveLength(2);
  });

  it('keys are independent, and a key is free again once its runs are done', async () => {
    const { runs, run } = gatedRuns();
    const call = coalesce((key: string) => key, run);
    const a = call('a');
    const b = call('b');
    await tick();
    expect(runs.map((r) => r.key)).toEqual(['a', 'b']);
    runs.forEach((r) => r.finish());
    await Promise.all([a, b]);
    const again = call('a');
    await tick();
    expect(runs).toHaveLength(3);
    runs[2]!.finish();
    expect((await again).started).toBe(3);
  });

  it('a failed run fails only its own callers; the waiting ones get the next run', async () => {
    const { runs, run } = gatedRuns();
    const call = coalesce((key: string) => key, run);
    const first = call('a');
    await tick();
    const waiting = call('a');
    runs[0]!.fail(new Error('disk on fire'));
    await expect(first).rejects.toThrow('disk on fire');
    await tick();
    runs[1]!.finish();
    expect((await waiting).started).toBe(2);
  });

  it('a waiting caller who hangs up does not fail one who joins the same next run afterwards', async () => {
    const signals: AbortSignal[] = [];
    const { runs, run } = gatedRuns();
    const call = coalesce(
      (key: string) => key,
      (key: string, signal: AbortSignal) => {
        signals.push(signal);
        return run(key);
      },
    );
    const first = call('a');
    await tick();
    const gone = new AbortController();
    void call('a', gone.signal).catch(() => undefined);
    gone.abort(new Error('client hung up'));
    const connected = call('a', new AbortController().signal);
    runs[0]!.finish();
    await first;
    await tick();
    expect(runs).toHaveLength(2);
    expect(signals[1]!.aborted, 'the run for a connected caller is not aborted').toBe(false);
    runs[1]!.finish();
    expect((await connected).started).toBe(2);
  });

  it('never more than one run per key at a time, whatever the interleaving', async () => {
    let inFlight = 0;
    let most = 0;
    let calls = 0;
    const call = coalesce(
      (key: string) => key,
      async () => {
        calls += 1;
        inFlight += 1;
        most = Math.max(most, inFlight);
        await tick();
        inFlight -= 1;
        return calls;
      },
    );
    const results: Promise<number>[] = [];
    for (let i = 0; i < 200; i += 1) {
      results.push(call('k'));
      if (i % 7 === 0) await tick();
      if (i % 13 === 0) await Promise.resolve();
    }
    await Promise.all(results);
    expect(most).toBe(1);
    expect(calls).toBeLessThan(200);
  });
});
