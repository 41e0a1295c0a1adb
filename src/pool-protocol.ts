/**
 * The message a worker thread posts once its modules are loaded, naming its thread (kept apart from pool.ts
 * so the worker loads nothing else).
 */
const LOADED = 'actor-sync:worker-loaded';

export function loadedMessage(threadId: number): { [LOADED]: number } {
  return { [LOADED]: threadId };
}

/** The thread id a "loaded" message names, or undefined for any other message. */
export function loadedThreadOf(message: unknown): number | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const threadId = (message as Record<string, unknown>)[LOADED];
  return typeof threadId === 'number' ? threadId : undefined;
}
