/**
 * Reading a JSON file we do not own, and the wording of what is wrong with it. Every such error names
 * the file, says what was found, and ends with what happens now ("left unchanged").
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { InputError } from './errors.js';

// --- reading -------------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The parsed JSON of `path`, boxed so that a file holding `null` differs from a missing file. */
export async function readJsonFile(path: string): Promise<{ value: unknown } | null> {
  let bytes: Buffer;
  try {
    // Synchronous: this runs in a worker thread, where a thread-pool round trip per file only adds latency.
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw problem(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let text: string;
  try {
    // `fatal`: a byte that is not UTF-8 would otherwise become U+FFFD inside a URL without a word.
    text = utf8.decode(bytes);
  } catch {
    throw problem(path, 'is not UTF-8 text');
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (error) {
    throw problem(path, `invalid JSON (${(error as Error).message})`);
  }
}

// --- messages: the wording lives here ------------------------------------------------------------

/** Every legacy-file error: the caller leaves the actor as it was (SPEC §3, invariant 2). */
export function problem(file: string, reason: string): InputError {
  return new InputError(file, `${reason}; left unchanged`);
}

/** Turns the first zod issue into `output.output.s3_image_urls is not a list (got object)`. */
export function shapeError(file: string, error: z.ZodError, root: unknown, prefix: PropertyKey[] = []): InputError {
  const issue = error.issues[0];
  if (issue === undefined) return problem(file, 'has an unexpected shape');
  const found = valueAt(root, issue.path);
  const where = formatPath([...prefix, ...issue.path]);
  if (issue.code !== 'invalid_type') return problem(file, `${where}: ${issue.message}`);
  return problem(file, found === undefined ? `${where} is missing` : `${where} ${isNot(EXPECTED[issue.expected] ?? issue.expected, found)}`);
}

const EXPECTED: Record<string, string> = {
  object: 'an object',
  record: 'an object',
  array: 'a list',
  string: 'a string',
  boolean: 'true or false',
};

export function isNot(expected: string, found: unknown): string {
  return `is not ${expected} (got ${kindOf(found)})`;
}

/** The JSON name of a value's type, as a person would say it. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  return typeof value;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'the top level';
  return path
    .map((part, i) => {
      if (typeof part === 'number') return `[${part}]`;
      const name = String(part);
      const plain = /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `[${JSON.stringify(name)}]`;
      return i === 0 || plain.startsWith('[') ? plain : `.${plain}`;
    })
    .join('');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const part of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

