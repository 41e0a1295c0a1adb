/**
 * Coalescing of identical requests that stays fresh. A burst of N requests for one key costs at most two
 * runs, yet every caller gets the result of a run that started after it called: callers that arrive while
 * a run is in flight share the *next* run, never the one already under way (which may have read the files
 * before they changed). A run's signal aborts once every caller sharing it has gone (its own signal
 * aborted), so the run can drop work nobody waits for.
 */

/** The callers one run serves: its signal aborts when the last of them goes. */
interface Audience {
  controller: AbortController;
  callers: number;
}

interface Slot<T> {
  /** Callers that arrived while a run was in flight: they share the next run. */
  next?: Audience & { promise: Promise<T>; resolve: (value: T) => void; reject: (reason: unknown) => void };
}

/**
 * Wraps `run` so that, per key, at most one run is in flight and at most one more is waiting. Calls with
 * the same key must be interchangeable: a shared run uses the argument of the call that started it.
 * @example
 * const assess = coalesce((actor: Actor) => actor.name, (actor, signal) => pool.assess(taskFor(actor)));
 * await Promise.all([assess(a), assess(a), assess(a)]); // two runs at most, each caller fresh
 */
export function coalesce<A, T>(
  keyOf: (arg: A) => string,
  run: (arg: A, signal: AbortSignal) => Promise<T>,
): (arg: A, signal?: AbortSignal) => Promise<T> {
  const slots = new Map<string, Slot<T>>();

  const launch = (key: string, arg: A, audience: Audience): Promise<T> => {
    const slot: Slot<T> = {};
    slots.set(key, slot);
    const promise = Promise.resolve().then(() => run(arg, audience.controller.signal));
    // One synchronous step hands the key over to the next run or frees it: no caller can slip in between.
    const settle = () => {
      const next = slot.next;
      if (next === undefined) slots.delete(key);
      else launch(key, arg, next).then(next.resolve, next.reject);
    };
    promise.then(settle, settle);
    return promise;
  };

  return (arg, signal) => {
    const key = keyOf(arg);
    const slot = slots.get(key);
    if (slot === undefined) {
      const audience: Audience = { controller: new AbortController(), callers: 0 };
      join(audience, signal);
      return launch(key, arg, audience);
    }
    slot.next ??= { ...deferred<T>(), controller: new AbortController(), callers: 0 };
    // Everyone who waited left before the run began: the run reads its signal only when it starts, so a
    // fresh one keeps their hang-up from failing this caller.
    if (slot.next.controller.signal.aborted) slot.next.controller = new AbortController();
    join(slot.next, signal);
    return slot.next.promise;
  };
}

/** Counts a caller in; one without a signal never goes. */
function join(audience: Audience, signal: AbortSignal | undefined): void {
  audience.callers += 1;
  if (signal === undefined) return;
  const leave = () => {
    audience.callers -= 1;
    if (audience.callers === 0) audience.controller.abort(signal.reason);
  };
  if (signal.aborted) leave();
  else signal.addEventListener('abort', leave, { once: true });
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (reason: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}
