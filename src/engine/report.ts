/** What a run found and did for one actor: plain data, so it crosses from a worker thread as it is. */
import type { Difference } from '../../workers/differences.js';
import type { ActorFailure } from '../errors.js';
import type { TrainingEntry, TrainingStatistics } from '../manifest/schema.js';

/** What happened to a manifest; with `dryRun`, what would. */
export type ManifestOutcome = 'created' | 'written' | 'unchanged' | 'failed' | 'not-run';
/** What happened to `response.json`; with `dryRun`, what would. */
export type LegacyOutcome = 'retired' | 'kept' | 'none' | 'failed';

export interface ActorReport {
  id: string;
  name: string;
  manifest: ManifestOutcome;
  legacy: LegacyOutcome;
  statistics: TrainingStatistics | null;
  hashedFiles: number;
  hashedBytes: number;
  reusedFiles: number;
  errors: ActorFailure[];
  warnings: ActorFailure[];
  /** What sync changes (or would) in this actor's files: `check` lists these. */
  differences: Difference[];
  /** The actor's entries after this run, when the run was asked to explain (push, pull, dry runs). */
  entries?: TrainingEntry[];
}

export function emptyReport(actor: { id: string; name: string }, manifest: ManifestOutcome): ActorReport {
  return {
    id: actor.id,
    name: actor.name,
    manifest,
    legacy: 'none',
    statistics: null,
    hashedFiles: 0,
    hashedBytes: 0,
    reusedFiles: 0,
    errors: [],
    warnings: [],
    differences: [],
  };
}

/** Marks the actor failed: its manifest and response.json stay as they were. */
export function failed(report: ActorReport, file: string, reason: string): ActorReport {
  report.errors.push({ actor: report.name, file, reason });
  report.manifest = 'failed';
  report.legacy = 'failed';
  return report;
}
