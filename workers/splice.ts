/**
 * Writes the owned fields into a manifest's text by splicing (SPEC §3): every byte outside `training_data`,
 * `training_data_updated` and the `training_*` keys of `statistics` stays as it was written — a Python
 * `1.0`, a `\u00e9` escape, an integer beyond 2^53, the order of keys that look like numbers, the file's
 * indentation and its last byte. JSON.parse and JSON.stringify would re-encode all of them, and the studio
 * keeps its manifests in git.
 *
 * The text must already have parsed as a JSON object within the depth bound (read-actor.ts), with no owned
 * key named twice (json-scan.ts): this module only finds offsets in it.
 */
import { stringEnd } from '../src/shared/json-scan.js';
import { OWNED_FIELDS, OWNED_STATISTICS, type TrainingEntry, type TrainingStatistics } from '../src/manifest/schema.js';

export interface OwnedFields {
  training_data: TrainingEntry[];
  training_data_updated: string;
  statistics: TrainingStatistics;
}

interface Member {
  key: string;
  /** The key's opening quote. */
  start: number;
  valueStart: number;
  /** One past the value's last character. */
  valueEnd: number;
}

interface ObjectText {
  open: number;
  close: number;
  members: Member[];
}

/** How the file lays out its text: the indentation one level adds (null: all on one line), and its line end. */
interface Layout {
  unit: string | null;
  eol: string;
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

/**
 * `text` with the owned fields replaced where they are and added, in the order above, at the end of their
 * object where they are not. A byte-order mark is dropped (many JSON readers refuse one).
 */
export function spliceManifest(text: string, owned: OwnedFields): string {
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  const top = objectAt(text, skipSpace(text, 0));
  const layout: Layout = {
    unit: indentUnit(text, top),
    eol: /\r\n/.test(text.slice(0, text.indexOf('\n') + 1)) ? '\r\n' : '\n',
  };
  const edits: Edit[] = [];
  const added: [string, unknown][] = [];
  for (const key of OWNED_FIELDS) {
    const member = top.members.find((m) => m.key === key);
    if (member === undefined) {
      added.push([key, owned[key]]);
      continue;
    }
    if (key === 'statistics') {
      edits.push(...statisticsEdits(text, objectAt(text, member.valueStart), owned.statistics, layout));
      continue;
    }
    edits.push({
      start: member.valueStart,
      end: member.valueEnd,
      text: render(owned[key], indentOf(text, member), layout),
    });
  }
  if (added.length > 0) edits.push(appendMembers(text, top, added, layout));
  edits.sort((a, b) => b.start - a.start);
  for (const edit of edits) text = text.slice(0, edit.start) + edit.text + text.slice(edit.end);
  return text;
}

/** The owned keys of `statistics` replaced in place, the missing ones added at its end; the others kept. */
function statisticsEdits(text: string, stats: ObjectText, owned: TrainingStatistics, layout: Layout): Edit[] {
  const edits: Edit[] = [];
  const added: [string, unknown][] = [];
  for (const key of OWNED_STATISTICS) {
    const member = stats.members.find((m) => m.key === key);
    if (member === undefined) added.push([key, owned[key]]);
    else
      edits.push({
        start: member.valueStart,
        end: member.valueEnd,
        text: render(owned[key], indentOf(text, member), layout),
      });
  }
  if (added.length > 0) edits.push(appendMembers(text, stats, added, layout));
  return edits;
}

/** New members after an object's last one, laid out like its members (or, in an empty object, one level in). */
function appendMembers(text: string, object: ObjectText, members: [string, unknown][], layout: Layout): Edit {
  const { unit, eol } = layout;
  const last = object.members.at(-1);
  if (last === undefined) {
    const outer = leadingSpace(text, object.open);
    const inner = unit === null ? null : outer + unit;
    const body = members.map(([key, value]) => `${JSON.stringify(key)}: ${render(value, inner, layout)}`);
    const object_ =
      inner === null ? `{${body.join(', ')}}` : `{${eol}${inner}${body.join(`,${eol}${inner}`)}${eol}${outer}}`;
    return { start: object.open, end: object.close + 1, text: object_ };
  }
  const indent = indentOf(text, last);
  const separator = text.slice(skipValue(text, last.start), last.valueStart);
  const lead = indent === null ? ', ' : `,${eol}${indent}`;
  const added = members
    .map(([key, value]) => `${lead}${JSON.stringify(key)}${separator}${render(value, indent, layout)}`)
    .join('');
  return { start: last.valueEnd, end: last.valueEnd, text: added };
}

/** A value as JSON.stringify lays it out with the file's indentation unit and line ends, continued at `indent`. */
function render(value: unknown, indent: string | null, { unit, eol }: Layout): string {
  if (indent === null || unit === null) return JSON.stringify(value);
  return JSON.stringify(value, null, unit).replace(/\n/g, `${eol}${indent}`);
}

/** The indentation of a member that starts its own line, or null when it shares a line with what precedes it. */
function indentOf(text: string, member: Member): string | null {
  return lineIndent(text, member.start);
}

/** The whitespace from the line's start to `at`, when nothing else precedes `at` on its line. */
function lineIndent(text: string, at: number): string | null {
  const before = text.slice(text.lastIndexOf('\n', at - 1) + 1, at);
  return /^[ \t]*$/.test(before) ? before : null;
}

/** The whitespace a line starts with: the line holding `at`. */
function leadingSpace(text: string, at: number): string {
  const lineStart = text.lastIndexOf('\n', at - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart, at))![0];
}

/** The top level's indentation (what one level adds), or null for a document on one line. */
function indentUnit(text: string, top: ObjectText): string | null {
  for (const member of top.members) {
    const indent = indentOf(text, member);
    if (indent !== null && indent !== '') return indent;
  }
  return top.members.length === 0 ? '  ' : null;
}

// --- finding offsets in text already known to be JSON -------------------------------------------

/** The members of the object whose `{` is at `open`. */
function objectAt(text: string, open: number): ObjectText {
  if (text[open] !== '{') throw new TypeError(`spliceManifest: no object at offset ${open}`);
  const members: Member[] = [];
  let i = skipSpace(text, open + 1);
  while (text[i] !== '}') {
    const keyEnd = skipValue(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const valueEnd = skipValue(text, valueStart);
    members.push({ key, start: i, valueStart, valueEnd });
    i = skipSpace(text, valueEnd);
    if (text[i] === ',') i = skipSpace(text, i + 1);
  }
  return { open, close: i, members };
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i += 1;
  return i;
}

/** One past the end of the value (or key) starting at `i`. */
function skipValue(text: string, i: number): number {
  const first = text[i];
  if (first === '"') return stringEnd(text, i) + 1;
  if (first !== '{' && first !== '[') {
    while (i < text.length && !',}] \n\r\t:'.includes(text[i]!)) i += 1;
    return i;
  }
  let depth = 0;
  for (; i < text.length; i += 1) {
    const c = text[i];
    if (c === '"') i = stringEnd(text, i);
    else if (c === '{' || c === '[') depth += 1;
    else if ((c === '}' || c === ']') && --depth === 0) return i + 1;
  }
  throw new TypeError('spliceManifest: unterminated value');
}
