/**
 * The worker thread's entry (piscina loads the compiled `.js`): one named task per kind of work. Each
 * task finishes all its async work before it returns.
 */
import { parentPort, threadId } from 'node:worker_threads';
import { loadedMessage } from '../src/shared/pool-protocol.js';

export { actorUrls as urls, assessActor as assess } from './assess.js';
export { hashFiles as hash } from './hash.js';

// Evaluated last, after every module above: from here on the thread may be stopped safely (see pool.ts).
parentPort?.postMessage(loadedMessage(threadId));
