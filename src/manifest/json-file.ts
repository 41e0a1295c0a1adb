/**
 * Reading a JSON file we do not own, and the wording of what is wrong with it. Every such error names
 * the file, says what was found, and ends with what happens now ("left unchanged").
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, realpathSync, type BigIntStats } from 'node:fs';
import { dirname } from 'node:path';
import type * as z from 'zod';
import { InputError } from '../errors.js';
import { MAX_DEPTH, MAX_JSON_BYTES, scanJson, type GuardedKey } from '../shared/json-scan.js';
import { printable } from '../shared/printable.js';
import { isInside, leadingOutOf } from '../engine/root.js';

// --- reading -------------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Limits on reading a file we do not own. */
export interface ReadJsonOptions {
  /** Refuse larger files (a 50 MB response.json would cost far more memory than a run may use). Default 16 MiB. */
  maxBytes?: number;
  /** The folder the file must really be in (symlinks resolved), and which it is: a file whose real path is elsewhere is not read. */
  within?: { real: string; folder: 'actors' | 'manifests' };
  /**
   * The file belongs to its own folder: one that is a symlink into another folder (another actor's
   * `response.json`) is not read, so an actor never takes or retires another's URLs.
   */
  ownFolder?: boolean;
  /** Keys whose value the reader needs: named twice in one object (JSON.parse keeps the last), an error. */
  guarded?: GuardedKey;
}

const MiB = 1024 * 1024;

/**
 * The parsed JSON of `path`, boxed so that a file holding `null` differs from a missing file. Only a
 * regular file is read (opened non-blocking, so a FIFO cannot hang the thread), and only inside the root.
 * `stats` are those of the file read, taken before its `bytes`.
 */
export async function readJsonFile(
  path: string,
  options: ReadJsonOptions = {},
): Promise<{ value: unknown; stats: BigIntStats; bytes: Buffer } | null> {
  let fd: number;
  try {
    // Synchronous: this runs in a worker thread, where a thread-pool round trip per file only adds latency.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw problem(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let bytes: Buffer;
  let stats: BigIntStats;
  try {
    stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile()) throw problem(path, 'is not a regular file');
    checkWhereItLeads(path, options);
    const limit = options.maxBytes ?? MAX_JSON_BYTES;
    const size = Number(stats.size);
    if (size > limit)
      throw problem(path, `is ${(size / MiB).toFixed(1)} MB, more than this tool reads (${limit / MiB} MB)`);
    bytes = readFileSync(fd);
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw problem(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  } finally {
    closeSync(fd);
  }
  let text: string;
  try {
    // `fatal`: a byte that is not UTF-8 would otherwise become U+FFFD inside a URL without a word.
    text = utf8.decode(bytes);
  } catch {
    throw problem(path, 'is not UTF-8 text');
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  // Before the parse: a deep document costs JSON.parse and every recursive reader after it hundreds of MB.
  const scan = scanJson(text, options.guarded ?? (() => false));
  if (!scan.ok && scan.tooDeep) throw problem(path, `is nested more than ${MAX_DEPTH} levels deep`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw problem(path, `invalid JSON (${printable((error as Error).message)})`);
  }
  if (!scan.ok && !scan.tooDeep) {
    const where = scan.path.length === 0 ? '' : ` in ${formatPath(scan.path)}`;
    throw problem(
      path,
      `names ${JSON.stringify(scan.key)} twice${where} once escapes are read (a duplicate key: JSON keeps only the last, so one would be lost)`,
    );
  }
  return { value, stats, bytes };
}

/** A symlink is followed only within its trusted folder, and for a file of `ownFolder`, only within its own folder. */
function checkWhereItLeads(path: string, options: ReadJsonOptions): void {
  const { within } = options;
  if (within === undefined && !options.ownFolder) return;
  const real = realpathSync.native(path);
  if (within !== undefined && !isInside(real, within.real)) {
    throw problem(path, `is ${leadingOutOf(within.folder)}; not followed`);
  }
  // Only a path through a symlink has a real path of another spelling: the common case costs nothing more.
  if (options.ownFolder && real !== path && dirname(real) !== realpathSync.native(dirname(path))) {
    throw problem(
      path,
      `is a symlink to ${real}, a file of another folder; not followed (an actor's files are its own)`,
    );
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
  return problem(
    file,
    found === undefined
      ? `${where} is missing`
      : `${where} ${isNot(EXPECTED[issue.expected] ?? issue.expected, found)}`,
  );
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
