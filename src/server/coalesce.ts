/**
 * Coalescing of identical requests that stays fresh. A burst of N requests for one key costs at most two
 * runs, yet every caller gets the result of a run that started after it called: callers that arrive while
 * a run is in flight share the *next* run, never the one already under way (which may have read the files
 * before they changed).
 */

interface Slot<T> {
  /** Callers that arrived while a run was in flight: they share the next run. */
  next?: { promise: Promise<T>; resolve: (value: T) => void; reject: (reason: unknown) => void };
}

/**
 * Wraps `run` so that, per key, at most one run is in flight and at most one more is waiting. Calls with
 * the same key must be interchangeable: a shared run uses the argument of the call that started it.
 * @example
 * const assess = coalesce((actor: Actor) => actor.name, (actor) => pool.assess(taskFor(actor)));
 * await Promise.all([assess(a), assess(a), assess(a)]); // two runs at most, each caller fresh
 */
export function coalesce<A, T>(keyOf: (arg: A) => string, run: (arg: A) => Promise<T>): (arg: A) => Promise<T> {
  const slots = new Map<string, Slot<T>>();

  const launch = (key: string, arg: A): Promise<T> => {
    const slot: Slot<T> = {};
    slots.set(key, slot);
    const promise = Promise.resolve().then(() => run(arg));
    // One synchronous step hands the key over to the next run or frees it: no caller can slip in between.
    const settle = () => {
      const next = slot.next;
      if (next === undefined) slots.delete(key);
      else launch(key, arg).then(next.resolve, next.reject);
    };
    promise.then(settle, settle);
    return promise;
  };

  return (arg) => {
    const key = keyOf(arg);
    const slot = slots.get(key);
    if (slot === undefined) return launch(key, arg);
    slot.next ??= deferred<T>();
    return slot.next.promise;
  };
}

function deferred<T>(): NonNullable<Slot<T>['next']> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}
