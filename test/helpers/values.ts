/** Small values and checks many tests share: hashes, thrown errors, regular-expression text. */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import type { TrainingStatistics } from '../../src/manifest/schema.js';

/** The MD5 of `bytes`, in hex. */
export function md5(bytes: Uint8Array | string): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** A well-formed MD5 that stands for "content number n" where no file exists: `…0001`, `…0002`. */
export function fakeMd5(n: number): string {
  return n.toString(16).padStart(32, '0');
}

/** The error `fn` throws; fails the test when it returns. */
export function thrownBy(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

/** The error `promise` rejects with, checked to be a `type`. */
export async function rejection<T extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => T,
): Promise<T> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  return error as T;
}

/** `text` as a regular expression that matches it literally. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Owned statistics of a two-image actor: one synced, one local only. */
export const STATISTICS: TrainingStatistics = {
  training_images_count: 2,
  training_synced_count: 1,
  training_local_only_count: 1,
  training_s3_only_count: 0,
  training_out_of_sync_count: 0,
  training_missing_count: 0,
  training_data_size_bytes: 5_570_000,
  training_data_size_mb: 5.31,
};
