/**
 * One actor, from disk to decision: read its manifest and legacy files, stat and hash its images, classify,
 * and serialize the new manifest when it changed. Runs in a worker thread (so JSON parsing and hashing of
 * many actors share every core) and writes nothing: the main thread is the single writer.
 */
import { classify, type LocalFile } from './classify.js';
import { entryDifferences, statisticsDifferences, type Difference } from './differences.js';
import type { Actor } from './discover.js';
import { InputError, messageOf } from './errors.js';
import { hashFiles, type HashFile, type HashResult } from './hash.js';
import { newManifest, ownedFieldsDiffer, serializeManifest, withTrainingData } from './manifest/merge.js';
import type { TrainingEntry, TrainingStatistics } from './manifest/schema.js';
import { readActor, type ActorFacts } from './read-actor.js';
import { emptyReport, failed, type ActorReport } from './report.js';
import { urlsNotHeld } from './retire.js';
import type { DataRoot } from './root.js';

export interface AssessTask {
  actor: Actor;
  data: DataRoot;
  verify: boolean;
  keepLegacy: boolean;
  /** `training_data_updated` of a manifest written by this run. */
  now: string;
  /** Send back the entries and the differences (the API and `check` need them; `sync` does not). */
  explain: boolean;
}

export interface Assessment {
  report: ActorReport;
  /** The new entries (only when the task asked to `explain`). */
  entries: TrainingEntry[];
  /** Filenames the manifest already listed (the API marks the others `tracked: false`). */
  tracked: string[];
  /** `good` marks from prompt_metadata.json, by filename. */
  good: Record<string, boolean>;
  /** The manifest's `training_data_updated`, when it has one. */
  manifestUpdated: string | null;
  /** The new manifest's bytes, when it differs from the one on disk. */
  commit?: { path: string; text: string };
  /** The actor's response.json and the URLs of it no entry holds (retiring needs none). */
  legacy?: { path: string; urlsNotHeld: string[] };
}

export async function assessActor(task: AssessTask): Promise<Assessment> {
  const { actor } = task;
  const report = emptyReport(actor, 'failed');
  const fail = (file: string, reason: string): Assessment => ({ report: failed(report, file, reason), entries: [], tracked: [], good: {}, manifestUpdated: null });

  let facts: ActorFacts;
  try {
    facts = await readActor(actor, task.data);
  } catch (error) {
    if (error instanceof InputError) return fail(error.file, error.reason);
    return fail(actor.dir, messageOf(error));
  }
  for (const skipped of facts.skipped) report.warnings.push({ actor: actor.name, ...skipped });

  const previous = new Map(facts.previous.map((entry) => [entry.filename, entry]));
  const files: HashFile[] = facts.images.map((image) => ({ path: image.path, reuse: reusable(previous.get(image.filename)) }));
  const results = hashFiles({ files, racyFromNs: facts.manifestMtimeNs, verify: task.verify });

  const local: LocalFile[] = [];
  for (const [i, result] of results.entries()) {
    const image = facts.images[i]!;
    if (result.ok) {
      local.push({ filename: image.filename, localPath: image.localPath, size: result.size, mtimeNs: result.mtimeNs, inode: result.inode, md5: result.md5 });
      if (result.reused) report.reusedFiles += 1;
      else {
        report.hashedFiles += 1;
        report.hashedBytes += result.size;
      }
      if (result.size === 0) report.warnings.push({ actor: actor.name, file: image.path, reason: 'a zero-byte image; recorded as it is' });
    } else if (isGone(result)) {
      report.warnings.push({ actor: actor.name, file: image.path, reason: result.reason });
    } else {
      return fail(image.path, `cannot be read (${result.code}: ${result.reason}); manifest and response.json left unchanged`);
    }
  }

  const { entries, statistics, conflicts } = classify({
    local,
    previous: facts.previous,
    legacyUrls: facts.legacyByFilename,
    promptUrls: facts.promptUrls,
  });
  if (conflicts.length > 0) return fail(facts.responsePath, conflicts.map((c) => `${c.filename}: ${c.reason}`).join('; '));
  report.statistics = statistics;

  const changed = facts.manifest === null || ownedFieldsDiffer(facts.manifest, entries, statistics);
  if (task.explain) report.differences = differencesOf(facts, entries, statistics, task.keepLegacy);
  report.manifest = !changed ? 'unchanged' : facts.manifest === null ? 'created' : 'written';
  const good: Record<string, boolean> = {};
  for (const [filename, image] of facts.prompt) if (image.good !== undefined) good[filename] = image.good;
  const updated = facts.manifest?.training_data_updated;
  const assessment: Assessment = {
    report,
    // Cloning every entry back to the main thread is most of a warm run's messaging: only when asked.
    entries: task.explain ? entries : [],
    tracked: facts.previous.map((entry) => entry.filename),
    good,
    manifestUpdated: typeof updated === 'string' ? updated : null,
  };
  if (changed) {
    const base = facts.manifest ?? newManifest(actor.id, actor.name);
    assessment.commit = { path: actor.manifestPath, text: serializeManifest(withTrainingData(base, entries, statistics, task.now)) };
  }
  if (facts.legacyUrls !== null) assessment.legacy = { path: facts.responsePath, urlsNotHeld: urlsNotHeld(facts.legacyUrls, entries) };
  return assessment;
}

/** The recorded hash with its stat token, when the entry has one. */
function reusable(entry: TrainingEntry | undefined): HashFile['reuse'] {
  if (!entry?.md5_hash || entry.size_bytes == null || entry.mtime_ns == null || entry.inode == null) return undefined;
  return { size: entry.size_bytes, mtimeNs: entry.mtime_ns, inode: entry.inode, md5: entry.md5_hash };
}

/** A file that vanished or turned out not to be a file after the listing: the actor goes on without it. */
function isGone(result: Extract<HashResult, { ok: false }>): boolean {
  return result.code === 'ENOENT' || result.code === 'ENOTFILE';
}

function differencesOf(facts: ActorFacts, entries: TrainingEntry[], statistics: TrainingStatistics, keepLegacy: boolean): Difference[] {
  const { actor } = facts;
  const differences: Difference[] = [];
  if (facts.manifest === null) differences.push({ actor: actor.name, file: actor.manifestPath, what: 'no manifest yet (would be created)' });
  differences.push(...entryDifferences(actor.name, facts.previous, entries));
  if (facts.manifest !== null) differences.push(...statisticsDifferences(actor.name, actor.manifestPath, facts.manifest.statistics, statistics));
  if (facts.legacyUrls !== null && !keepLegacy) differences.push({ actor: actor.name, file: facts.responsePath, what: 'legacy file not yet retired' });
  return differences;
}
