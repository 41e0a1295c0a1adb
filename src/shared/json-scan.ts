/**
 * One pass over JSON text before it is parsed, for the two things JSON.parse cannot be trusted with in a
 * file we do not own: nesting (a document 100 000 levels deep parses, then overflows every recursive
 * reader after it, at hundreds of MB) and keys named twice (JSON.parse keeps the last, silently, and it
 * compares keys after their escapes are read: `"a"` and `"\u0061"` are one key).
 */

/** SPEC §3: deeper documents are refused before a full parse. */
export const MAX_DEPTH = 512;

/** Larger files we do not own are refused before they are read: a manifest, and any other JSON file. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

/** Where a key sits: the keys and list indices leading to the object that holds it. */
export type JsonPath = (string | number)[];

/** Whether a key named twice in the object at `path` matters to the reader (its value would be lost). */
export type GuardedKey = (path: readonly (string | number)[], key: string) => boolean;

export type ScanResult =
  | { ok: true }
  | { ok: false; tooDeep: true }
  | { ok: false; tooDeep: false; path: JsonPath; key: string };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_LIST = 0x5b;
const CLOSE_LIST = 0x5d;
const COMMA = 0x2c;

/**
 * Scans `text` for nesting deeper than `maxDepth` and for the first key that `guarded` cares about named
 * twice in one object. Text that is not JSON is passed over without a word: JSON.parse says what is wrong.
 */
export function scanJson(text: string, guarded: GuardedKey, maxDepth = MAX_DEPTH): ScanResult {
  // Per open container: the keys seen (an object) or null (a list); and the key or index now being read.
  const keys: (Set<string> | null)[] = [];
  const at: (string | number)[] = [];
  let expectKey = false;
  let duplicate: { path: JsonPath; key: string } | undefined;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (end < 0) break;
      if (expectKey && duplicate === undefined) {
        const key = keyText(text, i, end);
        if (key === undefined) break;
        const depth = keys.length - 1;
        const seen = keys[depth]!;
        if (seen.has(key) && guarded(at.slice(0, depth), key)) duplicate = { path: at.slice(0, depth), key };
        seen.add(key);
        at[depth] = key;
      }
      expectKey = false;
      i = end;
    } else if (c === OPEN_OBJECT || c === OPEN_LIST) {
      if (keys.length >= maxDepth) return { ok: false, tooDeep: true };
      keys.push(c === OPEN_OBJECT ? new Set() : null);
      at.push(c === OPEN_OBJECT ? '' : 0);
      expectKey = c === OPEN_OBJECT;
    } else if (c === CLOSE_OBJECT || c === CLOSE_LIST) {
      keys.pop();
      at.pop();
      expectKey = false;
    } else if (c === COMMA) {
      const depth = keys.length - 1;
      expectKey = keys[depth] instanceof Set;
      if (keys[depth] === null) at[depth] = (at[depth] as number) + 1;
    }
  }
  return duplicate ? { ok: false, tooDeep: false, ...duplicate } : { ok: true };
}

/** The index of the quote closing the string opened at `start`, or -1. */
export function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  while (end >= 0) {
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
  return -1;
}

/** A key as JSON.parse reads it (escapes read), or undefined when it is not a valid JSON string. */
function keyText(text: string, start: number, end: number): string | undefined {
  const raw = text.slice(start + 1, end);
  if (!raw.includes('\\')) return raw;
  try {
    return JSON.parse(text.slice(start, end + 1)) as string;
  } catch {
    return undefined;
  }
}
