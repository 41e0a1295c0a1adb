/**
 * What pool.ts and its worker threads share, kept apart from pool.ts so that neither the worker nor a caller
 * that only needs these loads piscina: the worker's file, the message a thread posts once its modules
 * are loaded, and the one it posts as it reads files to hash.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The worker's entry (scripts/build.mjs): dist/workers/tasks.js in the package's root, the first folder up
 * with a package.json, whether this code runs as TypeScript (tests: src/) or from a chunk of dist/src/.
 */
export function workerFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'dist/workers/tasks.js');
}

const LOADED = 'actor-sync:worker-loaded';

export function loadedMessage(threadId: number): { [LOADED]: number } {
  return { [LOADED]: threadId };
}

const HASHED = 'actor-sync:hashed';

/** Bytes a thread has read for hashing since its last such message (hash.ts): progress within large files. */
export function hashedMessage(bytes: number): { [HASHED]: number } {
  return { [HASHED]: bytes };
}

/** The bytes a "hashed" message reports, or undefined for any other message. */
export function hashedBytesOf(message: unknown): number | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const bytes = (message as Record<string, unknown>)[HASHED];
  return typeof bytes === 'number' ? bytes : undefined;
}

/** The thread id a "loaded" message names, or undefined for any other message. */
export function loadedThreadOf(message: unknown): number | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const threadId = (message as Record<string, unknown>)[LOADED];
  return typeof threadId === 'number' ? threadId : undefined;
}
