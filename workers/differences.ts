/**
 * What `sync` would change for one actor, in words a CI log can show: actor / file / what differs.
 * Pure: the manifest's entries before, the entries after.
 */
import type { TrainingEntry, TrainingStatistics } from '../src/manifest/schema.js';
import { sameEntries } from '../src/manifest/merge.js';
import { OWNED_STATISTICS } from '../src/manifest/schema.js';

export interface Difference {
  actor: string;
  file: string;
  what: string;
}

/** The entry fields whose change `check` reports (the stat token and derived sizes follow these). */
const COMPARED = [
  'local_path',
  'size_bytes',
  'md5_hash',
  's3_url',
  's3_md5',
  's3_exists',
  'status',
  'duplicate_of',
] as const;

export function entryDifferences(
  actor: string,
  before: readonly TrainingEntry[],
  after: readonly TrainingEntry[],
): Difference[] {
  const old = new Map(before.map((entry) => [entry.filename, entry]));
  const differences: Difference[] = [];
  for (const entry of after) {
    const was = old.get(entry.filename);
    old.delete(entry.filename);
    if (!was) {
      differences.push({ actor, file: entry.filename, what: `not in the manifest yet (would be ${entry.status})` });
      continue;
    }
    const found = COMPARED.filter((key) => (was[key] ?? null) !== (entry[key] ?? null));
    for (const key of found)
      differences.push({ actor, file: entry.filename, what: `${key}: ${show(was[key])} → ${show(entry[key])}` });
    // Same content, new stat (a touch, a fresh checkout, a copy): sync still rewrites the entry, so
    // check must say so, or the two would disagree about "nothing would change".
    if (found.length === 0 && !sameEntries([was], [entry])) {
      differences.push({ actor, file: entry.filename, what: statChange(was, entry) });
    }
  }
  for (const gone of old.values()) {
    differences.push({
      actor,
      file: gone.filename,
      what: 'in the manifest but neither on disk nor in S3 (would be dropped)',
    });
  }
  return differences;
}

export function statisticsDifferences(
  actor: string,
  file: string,
  before: unknown,
  after: TrainingStatistics,
): Difference[] {
  const stats = (typeof before === 'object' && before !== null ? before : {}) as Record<string, unknown>;
  return OWNED_STATISTICS.filter((key) => stats[key] !== after[key]).map((key) => ({
    actor,
    file,
    what: `statistics.${key}: ${show(stats[key])} → ${show(after[key])}`,
  }));
}

function statChange(was: TrainingEntry, now: TrainingEntry): string {
  if (was.modified_date !== now.modified_date)
    return `modified_date: ${show(was.modified_date)} → ${show(now.modified_date)} (same content)`;
  if (was.inode !== now.inode) return `inode: ${show(was.inode)} → ${show(now.inode)} (same content)`;
  return 'recorded fields would be rewritten (same content)';
}

function show(value: unknown): string {
  return value === undefined || value === null ? 'none' : JSON.stringify(value);
}
