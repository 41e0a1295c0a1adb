/** The message a worker thread posts once its modules are loaded (kept apart so the worker loads nothing else). */
export const LOADED = 'actor-sync:worker-loaded';
