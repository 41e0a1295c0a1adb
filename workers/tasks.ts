/**
 * The worker thread's entry (piscina loads the compiled `.js`): one named task per kind of work. Each
 * task finishes all its async work before it returns.
 */
export { actorUrls as urls, assessActor as assess } from '../src/assess.js';
export { hashFiles as hash } from '../src/hash.js';
