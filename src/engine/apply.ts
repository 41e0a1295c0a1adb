/**
 * apply: commits one planned actor in this thread (the single writer): its manifest, then its response.json
 * retired. A plan that writes nothing (`dryRun`) goes through the same steps and only says what they would do.
 */
import { readFileSync } from 'node:fs';
import type { Assessment } from '../../workers/assess.js';
import { messageOf } from '../errors.js';
import type { RunLock } from '../lock/lock.js';
import { CommitError, commitFile, fsyncDirectoryShared, fsyncFile } from '../manifest/commit.js';
import { md5Hex } from '../md5/hex.js';
import { failed, type ActorReport, type LegacyOutcome } from './report.js';
import { retireLegacyFile } from './retire.js';
import type { DataRoot } from './root.js';

/** What applying needs of the run. */
export interface ApplyContext {
  data: DataRoot;
  dryRun: boolean;
  keepLegacy: boolean;
  /** The report keeps the actor's entries (push and pull plan from them, check --require-synced names them). */
  keepEntries: boolean;
  lock?: RunLock;
}

/** Commits one assessed actor's manifest, then retires its response.json. */
export async function apply(assessment: Assessment, context: ApplyContext): Promise<ActorReport> {
  const { report, commit, legacy, entries } = assessment;
  if (context.keepEntries) report.entries = entries;
  if (report.errors.length > 0) return report;
  if (commit && !context.dryRun) {
    const problem = await commitManifest(commit, context.lock);
    if (problem) {
      // The manifest is as it was; a response.json the actor has not got is not counted.
      failed(report, commit.path, `${problem}${legacy ? ' (response.json kept)' : ''}`);
      if (!legacy) report.legacy = 'none';
      return report;
    }
  }
  if (legacy) {
    const settled = await retire(legacy, commit === undefined, context);
    report.legacy = settled.outcome;
    if (settled.outcome === 'failed')
      report.errors.push({ actor: report.name, file: legacy.path, reason: settled.reason });
  }
  return report;
}

/** Writes the manifest; why not, when it was not (it is then left as it was). */
async function commitManifest(
  commit: NonNullable<Assessment['commit']>,
  lock: RunLock | undefined,
): Promise<string | undefined> {
  if (commit.readOnly)
    return 'is read-only, so sync will not replace it; left unchanged (make it writable to let sync update it)';
  // A lock taken over by another run means two writers: stop committing rather than race it.
  if (lock?.compromised) return `not written: this run lost its lock (${lock.compromised.message}); run again`;
  // Another program may have written the manifest since the worker read it (the lock binds only this
  // tool): its changes are not overwritten, and the actor is assessed afresh by the next run.
  const now = contentMd5(commit.path);
  if (now !== commit.basis) {
    const what = commit.basis === null ? 'appeared' : now === null ? 'was deleted' : 'changed';
    return `${what} while this run assessed the actor (another program?); not written; run again`;
  }
  try {
    await commitFile(commit.path, commit.text);
    return undefined;
  } catch (error) {
    // The failure names the manifest already: the reason does not repeat its path.
    const why =
      error instanceof CommitError ? error.reason : `could not be written (${messageOf(error)}); left unchanged`;
    return `cannot be written: ${why.replace(/^could not be written /, '')}`;
  }
}

type Legacy = NonNullable<Assessment['legacy']>;
type Retired = { outcome: Exclude<LegacyOutcome, 'failed'> } | { outcome: 'failed'; reason: string };

/** `nothingWritten`: the manifest holding the URLs is one an earlier run (or another program) wrote. */
async function retire(legacy: Legacy, nothingWritten: boolean, context: ApplyContext): Promise<Retired> {
  // That manifest's folder fsync may have failed, or another program never synced it: make it durable,
  // file and folder, before the legacy file goes.
  if (nothingWritten && !context.dryRun && !context.keepLegacy && legacy.urlsNotHeld.length === 0) {
    const durable = await Promise.all([
      fsyncFile(legacy.manifest.path),
      fsyncDirectoryShared(context.data.manifestsDir),
    ]).then(
      () => true,
      () => false,
    );
    if (!durable) return { outcome: 'failed', reason: 'not retired: the manifest could not be synced to disk; kept' };
  }
  return settleLegacy(legacy, context);
}

async function settleLegacy(legacy: Legacy, context: ApplyContext): Promise<Retired> {
  if (context.keepLegacy) return { outcome: 'kept' };
  if (legacy.urlsNotHeld.length > 0) {
    return {
      outcome: 'failed',
      reason: `not retired: the manifest does not hold ${legacy.urlsNotHeld.length} of its URLs (${legacy.urlsNotHeld[0]}…); kept`,
    };
  }
  if (context.dryRun) return { outcome: 'retired' };
  // The URLs are held by the manifest this run read or wrote: not by one another program wrote since.
  if (contentMd5(legacy.manifest.path) !== legacy.manifest.md5) {
    return {
      outcome: 'failed',
      reason: `not retired: ${legacy.manifest.path} changed while this run worked (another program?); kept, run again`,
    };
  }
  try {
    // The one left aside by a stopped run first: retiring response.json moves it to that name.
    for (const file of legacy.files) {
      if ((await retireLegacyFile(file)) === 'changed') {
        return {
          outcome: 'failed',
          reason: `not retired: ${file.path} changed while this run worked (it may name new URLs); kept, run again`,
        };
      }
    }
    return { outcome: 'retired' };
  } catch (error) {
    return {
      outcome: 'failed',
      reason: `could not be deleted (${messageOf(error)}); kept (the manifest holds all its URLs)`,
    };
  }
}

/** The MD5 of a file's bytes now; null when there is none. A file that cannot be read has no MD5 anything matches. */
function contentMd5(path: string): string | null {
  try {
    // Read in this thread: a manifest is small, and a thread-pool round trip per commit was a few per cent
    // of a cold run.
    return md5Hex(readFileSync(path));
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT'
      ? null
      : `unreadable: ${(error as NodeJS.ErrnoException).code}`;
  }
}
