/**
 * One actor, from disk to decision: read its manifest and legacy files, stat and hash its images, classify,
 * and serialize the new manifest when it changed. Runs in a worker thread (so JSON parsing and hashing of
 * many actors share every core) and writes nothing: the main thread is the single writer.
 */
import { join } from 'node:path';
import { classify, type LocalFile, type RemoteFact } from '../src/shared/classify.js';
import { entryDifferences, statisticsDifferences, type Difference } from './differences.js';
import type { Actor } from '../src/engine/discover.js';
import { InputError, messageOf } from '../src/errors.js';
import { fingerprintOf, type CacheEntry, type Inputs } from '../src/cache/fingerprint.js';
import { hashFiles, type HashFile, type HashResult } from './hash.js';
import { md5Hex } from '../src/md5/hex.js';
import { newManifest, ownedFieldsDiffer, sameEntries, sameJson, serializeManifest } from '../src/manifest/merge.js';
import { spliceManifest } from './splice.js';
import type { TrainingEntry, TrainingStatistics } from '../src/manifest/schema.js';
import { NO_STUDIO_FACTS, studioFactsOf, type StudioFacts } from '../src/manifest/studio.js';
import { readActor, type ActorFacts } from '../src/manifest/read-actor.js';
import { emptyReport, failed, type ActorReport } from '../src/engine/report.js';
import { urlsNotHeld, type LegacyFile } from '../src/engine/retire.js';
import type { DataRoot } from '../src/engine/root.js';
import { etagMatches, md5OfEtag } from '../src/s3/etag.js';
import { parseS3Url } from '../src/shared/s3-url.js';

export interface AssessTask {
  actor: Actor;
  data: DataRoot;
  verify: boolean;
  keepLegacy: boolean;
  /** `training_data_updated` of a manifest written by this run. */
  now: string;
  /** Send back the entries (the API, `check` and push/pull need them; `sync` does not). */
  explain: boolean;
  /** Also work out what would change on disk (`check`, `--dry-run`). */
  differences?: boolean;
  /** url → what S3 holds there (`--remote`, or this run's own transfers), for this actor's URLs. */
  remote?: Record<string, RemoteCheck>;
  /** filename → URL this run uploaded it to (push). */
  assignedUrls?: Record<string, string>;
  /** Work out the fingerprint the sync cache keeps when the actor comes to rest (a run that writes). */
  settle?: boolean;
}

/** A remote finding as it crosses threads: a fact, or why it could not be made. */
export interface RemoteCheck extends RemoteFact {
  /** False when S3 could not say whether the object matches (a multipart ETag without a stored MD5). */
  verifiable?: boolean;
  /** Why the check failed after retries. */
  error?: string;
  /** Read from a listed ETag: confirmed by a HEAD before the image is called out of sync (s3/verify.ts). */
  fromListing?: boolean;
  /** Why a HEAD could not verify the object (an SSE-KMS object without a stored MD5 or checksum…). */
  unverifiable?: string;
}

/** Every S3 URL an actor's files name (manifest, response.json, prompt_metadata.json); none when they cannot be read. */
export async function actorUrls(task: Pick<AssessTask, 'actor' | 'data'>): Promise<string[]> {
  try {
    const facts = await readActor(task.actor, task.data);
    const urls = new Set<string>();
    for (const entry of facts.previous) if (entry.s3_url) urls.add(entry.s3_url);
    for (const url of facts.legacyByFilename.values()) urls.add(url);
    for (const url of facts.promptUrls.values()) urls.add(url);
    return [...urls];
  } catch {
    return []; // the assessment that follows reports the file and the reason
  }
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
  /** What the studio's UI reads from the manifest besides training data (only when asked to `explain`). */
  studio: StudioFacts;
  /**
   * The new manifest's bytes, when it differs from the one on disk; `basis`, the MD5 of the bytes it was
   * made from (null: there was no manifest), which the file must still hold when it is replaced; `readOnly`,
   * the manifest has no write permission (someone froze it): a run that writes refuses it, a run that
   * writes nothing (`status`, `check`, `serve`) only reports what would change.
   */
  commit?: { path: string; text: string; basis: string | null; readOnly: boolean };
  /**
   * The actor's response.json (`path`, for messages), its files as read, the URLs of them no entry holds
   * (retiring needs none), and `manifest`: the manifest and the MD5 it must have when they are retired (of the
   * bytes committed, else of those read), so a manifest another program changed meanwhile retires nothing.
   */
  legacy?: { path: string; files: LegacyFile[]; urlsNotHeld: string[]; manifest: { path: string; md5: string | null } };
  /**
   * URLs whose listed ETag is not enough to decide (it differs from the local MD5, or is no MD5) and the
   * manifest's record does not settle: the caller HEADs them (`confirmUrls`) and assesses the actor again
   * with those facts. Set alone: nothing else of this assessment is to be used.
   */
  confirm?: string[];
  /**
   * What the sync cache may keep once this run's commit (and retirement of `legacy`) succeeds: the actor is
   * then at rest, assessing it again would change nothing. Only when the task asked to `settle`.
   */
  settled?: CacheEntry;
}

export async function assessActor(task: AssessTask): Promise<Assessment> {
  try {
    return await assess(task);
  } catch (error) {
    // Anything unforeseen (a manifest nested too deep to serialize…) fails this actor only.
    const why =
      error instanceof RangeError ? 'is nested too deep to process' : `could not be processed (${messageOf(error)})`;
    return failedAssessment(
      failed(emptyReport(task.actor, 'failed'), task.actor.manifestPath, `${why}; left unchanged`),
    );
  }
}

async function assess(task: AssessTask): Promise<Assessment> {
  const { actor } = task;
  const report = emptyReport(actor, 'failed');
  try {
    const facts = await readFacts(task);
    for (const skipped of facts.skipped) report.warnings.push({ actor: actor.name, ...skipped });
    const previous = new Map(facts.previous.map((entry) => [entry.filename, entry]));
    const local = hashLocal(task, facts, previous, report);
    const { remote, confirm } = await remoteFacts(task, local, previous, report);
    if (confirm.length > 0) return { ...failedAssessment(report), confirm };
    const { entries, statistics } = classifyActor(task, facts, local, remote);
    report.statistics = statistics;
    return await assessmentOf(task, facts, local, { entries, statistics }, report);
  } catch (error) {
    if (error instanceof Refusal) return failedAssessment(failed(report, error.file, error.reason));
    throw error;
  }
}

/** Why this actor is left unchanged: thrown by the steps of `assess`, which reports it as the actor's failure. */
class Refusal extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** The actor's files as read; any error reading them refuses the actor. */
async function readFacts(task: AssessTask): Promise<ActorFacts> {
  try {
    return await readActor(task.actor, task.data);
  } catch (error) {
    if (error instanceof InputError) throw new Refusal(error.file, error.reason);
    throw new Refusal(task.actor.dir, messageOf(error));
  }
}

/** Stats and hashes the actor's images (reusing recorded hashes whose stat token still matches), counted in the report. */
function hashLocal(
  task: AssessTask,
  facts: ActorFacts,
  previous: Map<string, TrainingEntry>,
  report: ActorReport,
): LocalFile[] {
  const { actor } = task;
  const files: HashFile[] = facts.images.map((image) => ({
    path: image.path,
    reuse: reusable(previous.get(image.filename)),
  }));
  const results = hashFiles({ files, racyFromNs: facts.manifestMtimeNs, verify: task.verify });
  const local: LocalFile[] = [];
  for (const [i, result] of results.entries()) {
    const image = facts.images[i]!;
    if (result.ok) {
      local.push({
        filename: image.filename,
        localPath: image.localPath,
        size: result.size,
        mtimeNs: result.mtimeNs,
        inode: result.inode,
        md5: result.md5,
      });
      if (result.reused) report.reusedFiles += 1;
      else {
        report.hashedFiles += 1;
        report.hashedBytes += result.size;
      }
      if (result.size === 0)
        report.warnings.push({ actor: actor.name, file: image.path, reason: 'a zero-byte image; recorded as it is' });
    } else if (isGone(result)) {
      report.warnings.push({ actor: actor.name, file: image.path, reason: result.reason });
    } else {
      throw new Refusal(
        image.path,
        `cannot be read (${result.code}: ${result.reason}); manifest and response.json left unchanged`,
      );
    }
  }
  return local;
}

/** What S3 holds at each URL the task checked, as facts to classify with, and the URLs a HEAD must confirm first. */
async function remoteFacts(
  task: AssessTask,
  local: LocalFile[],
  previous: Map<string, TrainingEntry>,
  report: ActorReport,
): Promise<{ remote: Map<string, RemoteFact>; confirm: string[] }> {
  const remote = new Map<string, RemoteFact>();
  const confirm: string[] = [];
  for (const [url, check] of Object.entries(task.remote ?? {})) {
    if (check.error) throw new Refusal(url, `could not be checked in S3 (${check.error}); manifest left unchanged`);
    const filename = parseS3Url(url).filename;
    const file = local.find((f) => f.filename === filename);
    const before = previous.get(filename);
    const known = before?.s3_url === url ? before : undefined;
    const decided = await decideRemote(
      check,
      file && { ...file, path: join(task.actor.trainingDir, file.filename) },
      known,
    );
    if (decided === 'confirm') confirm.push(url);
    else if (decided !== 'keep') remote.set(url, decided);
    else keepUnverifiable(task, url, check, file, known, remote, report);
  }
  return { remote, confirm };
}

/**
 * Never out of sync only for its ETag (SPEC §5). What the manifest knew of the URL stands; one new to it gets
 * what a sync without --remote assumes. One found absent before now exists: as for a URL never verified, its
 * bytes are taken to be the local file's (so a push leaves it alone).
 */
function keepUnverifiable(
  task: AssessTask,
  url: string,
  check: RemoteCheck,
  file: LocalFile | undefined,
  known: TrainingEntry | undefined,
  remote: Map<string, RemoteFact>,
  report: ActorReport,
): void {
  const absentBefore = known?.s3_exists === false;
  const kept = !known
    ? 'treated as a URL never verified'
    : absentBefore
      ? 'it exists now; treated as a URL never verified'
      : 'its last known state is kept';
  report.warnings.push({
    actor: task.actor.name,
    file: url,
    reason: `cannot be verified (${check.unverifiable ?? 'a multipart ETag without a stored MD5'}); ${kept}`,
  });
  if (absentBefore)
    remote.set(url, { exists: true, md5: file?.md5 ?? null, etag: check.etag, checkedAt: check.checkedAt });
}

/** Each image's new entry and the statistics; a legacy URL that conflicts with the manifest's refuses the actor. */
function classifyActor(
  task: AssessTask,
  facts: ActorFacts,
  local: LocalFile[],
  remote: Map<string, RemoteFact>,
): { entries: TrainingEntry[]; statistics: TrainingStatistics } {
  const { entries, statistics, conflicts } = classify({
    local,
    previous: facts.previous,
    legacyUrls: facts.legacyByFilename,
    promptUrls: facts.promptUrls,
    remote,
    assignedUrls: new Map(Object.entries(task.assignedUrls ?? {})),
  });
  if (conflicts.length > 0) {
    // One line however many: the first conflict with its URLs, and how many more there are like it.
    const [first] = conflicts;
    const more = conflicts.length > 1 ? `; and ${conflicts.length - 1} more like it` : '';
    throw new Refusal(
      facts.responsePath,
      `${first!.filename}: ${first!.reason}${more}; resolve by hand (retiring response.json would lose a URL); left unchanged`,
    );
  }
  return { entries, statistics };
}

/** The assessment of a classified actor: what it reports, the manifest to commit, the legacy file to retire, the cache entry. */
async function assessmentOf(
  task: AssessTask,
  facts: ActorFacts,
  local: LocalFile[],
  outcome: { entries: TrainingEntry[]; statistics: TrainingStatistics },
  report: ActorReport,
): Promise<Assessment> {
  const { actor } = task;
  const { entries, statistics } = outcome;
  const changed = facts.manifest === null || ownedFieldsDiffer(facts.manifest, entries, statistics);
  if (task.differences) report.differences = differencesOf(facts, entries, statistics, task.keepLegacy);
  report.manifest = !changed ? 'unchanged' : facts.manifest === null ? 'created' : 'written';
  const assessment = explained(task, facts, entries, report);
  const readMd5 = facts.manifestBytes === null ? null : md5Hex(facts.manifestBytes);
  if (changed) assessment.commit = commitOf(task, facts, outcome, readMd5);
  const settle = task.settle && report.warnings.length === 0 && !(facts.legacyUrls !== null && task.keepLegacy);
  // The MD5 of the manifest as this run leaves it: what retiring and the sync cache check it against.
  const leftMd5 =
    facts.legacyUrls === null && !settle ? null : assessment.commit ? md5Hex(assessment.commit.text) : readMd5;
  if (facts.legacyUrls !== null) {
    assessment.legacy = {
      path: facts.responsePath,
      files: facts.legacyFiles,
      urlsNotHeld: urlsNotHeld(facts.legacyUrls, entries),
      manifest: { path: actor.manifestPath, md5: leftMd5 },
    };
  }
  if (settle)
    assessment.settled = settledEntry(task, facts, local, { entries, statistics, changed, manifestMd5: leftMd5 });
  if (assessment.settled && task.remote) {
    const remote = await restingRemote(task, facts, local, entries, statistics);
    if (remote) assessment.settled.remote = remote;
  }
  return assessment;
}

/** The report with what the API, `check` and push/pull read besides it (only when the task asked to `explain`). */
function explained(task: AssessTask, facts: ActorFacts, entries: TrainingEntry[], report: ActorReport): Assessment {
  const good: Record<string, boolean> = {};
  for (const [filename, image] of facts.prompt) if (image.good !== undefined) good[filename] = image.good;
  const updated = facts.manifest?.training_data_updated;
  return {
    report,
    // Cloning every entry back to the main thread is most of a warm run's messaging: only when asked.
    entries: task.explain ? entries : [],
    tracked: task.explain ? facts.previous.map((entry) => entry.filename) : [],
    good: task.explain ? good : {},
    manifestUpdated: typeof updated === 'string' ? updated : null,
    studio: task.explain ? studioFactsOf(facts.manifest) : NO_STUDIO_FACTS,
  };
}

/** The new manifest, spliced into the text as read: nothing we do not own is re-encoded (SPEC §3). */
function commitOf(
  task: AssessTask,
  facts: ActorFacts,
  outcome: { entries: TrainingEntry[]; statistics: TrainingStatistics },
  readMd5: string | null,
): NonNullable<Assessment['commit']> {
  const { actor } = task;
  const base = facts.manifestBytes?.toString('utf8') ?? serializeManifest(newManifest(actor.id, actor.name));
  const text = spliceManifest(base, {
    training_data: outcome.entries,
    training_data_updated: task.now,
    statistics: outcome.statistics,
  });
  return { path: actor.manifestPath, text, basis: readMd5, readOnly: facts.manifestReadOnly };
}

/**
 * The ETag each of the actor's URLs had (null: no object), when a later `--remote` run whose listing finds
 * exactly that would come to the same entries: that run then settles the actor from the cache, listing its
 * URLs but reading nothing local. Checked by deciding and classifying again as that run would, from the
 * facts its listing would give; undefined when that changes anything, needs a HEAD, or the URLs it would
 * ask about are not those this run asked about.
 */
async function restingRemote(
  task: AssessTask,
  facts: ActorFacts,
  local: LocalFile[],
  entries: TrainingEntry[],
  statistics: TrainingStatistics,
): Promise<Record<string, string | null> | undefined> {
  const checks = Object.entries(task.remote ?? {});
  const urls = new Set([
    ...entries.flatMap((entry) => (entry.s3_url ? [entry.s3_url] : [])),
    ...facts.promptUrls.values(),
  ]);
  if (checks.length !== urls.size || checks.some(([url]) => !urls.has(url))) return undefined;
  const etags: Record<string, string | null> = {};
  const remote = new Map<string, RemoteFact>();
  for (const [url, check] of checks) {
    if (check.error !== undefined || (check.exists && check.etag === undefined)) return undefined;
    const etag = check.exists ? check.etag! : null;
    const listed: RemoteCheck =
      etag === null
        ? { exists: false, md5: null, checkedAt: check.checkedAt }
        : { exists: true, md5: md5OfEtag(etag), etag, fromListing: true, checkedAt: check.checkedAt };
    const filename = parseS3Url(url).filename;
    const file = local.find((f) => f.filename === filename);
    const entry = entries.find((e) => e.filename === filename);
    const decided = await decideRemote(
      listed,
      file && { ...file, path: join(task.actor.trainingDir, file.filename) },
      entry?.s3_url === url ? entry : undefined,
    );
    if (decided === 'confirm' || decided === 'keep') return undefined;
    remote.set(url, decided);
    etags[url] = etag;
  }
  const again = classify({ local, previous: entries, legacyUrls: new Map(), promptUrls: facts.promptUrls, remote });
  if (again.conflicts.length > 0 || !sameEntries(entries, again.entries) || !sameJson(statistics, again.statistics))
    return undefined;
  return etags;
}

/**
 * The cache entry of an actor once this run is done with it, or undefined when it is not at rest: the next
 * run, reading the manifest as this one leaves it, no response.json and no remote findings, must come to
 * the same entries. When nothing changed and nothing else fed this run, that holds by itself; else it is
 * checked by classifying again.
 */
function settledEntry(
  task: AssessTask,
  facts: ActorFacts,
  local: LocalFile[],
  outcome: { entries: TrainingEntry[]; statistics: TrainingStatistics; changed: boolean; manifestMd5: string | null },
): CacheEntry | undefined {
  const fedByMore =
    facts.legacyUrls !== null ||
    Object.keys(task.remote ?? {}).length > 0 ||
    Object.keys(task.assignedUrls ?? {}).length > 0;
  if (outcome.changed || fedByMore) {
    const again = classify({ local, previous: outcome.entries, legacyUrls: new Map(), promptUrls: facts.promptUrls });
    if (
      again.conflicts.length > 0 ||
      !sameEntries(outcome.entries, again.entries) ||
      !sameJson(outcome.statistics, again.statistics)
    )
      return undefined;
  }
  if (outcome.manifestMd5 === null) return undefined;
  const inputs: Inputs = {
    manifestMd5: outcome.manifestMd5,
    promptMd5: facts.promptBytes ? md5Hex(facts.promptBytes) : null,
    images: local.map((file) => ({
      filename: file.filename,
      size: file.size,
      mtimeNs: file.mtimeNs,
      inode: file.inode,
    })),
  };
  return {
    fingerprint: fingerprintOf(facts.actor, task.data, inputs),
    manifestMd5: inputs.manifestMd5,
    statistics: outcome.statistics,
    images: local.length,
  };
}

/**
 * What one URL's remote check makes of the object, given the local file and the manifest's entry for that
 * URL: the fact to classify with, `confirm` (a HEAD must tell first), or `keep` (unverifiable: the entry's
 * last known state stands, with a warning).
 */
async function decideRemote(
  check: RemoteCheck,
  file: (LocalFile & { path: string }) | undefined,
  known: TrainingEntry | undefined,
): Promise<RemoteFact | 'confirm' | 'keep'> {
  const fact: RemoteFact = {
    exists: check.exists,
    md5: check.md5,
    etag: check.etag,
    checkedAt: check.checkedAt,
    ...(check.crc64nvme ? { crc64nvme: check.crc64nvme } : {}),
  };
  if (!check.exists) return fact;
  // Steady state: the object the manifest last recorded, unchanged (same ETag): its recorded MD5 stands, with
  // no request. Unless that MD5 was only the ETag read as one and it now says the local file differs.
  const recorded = known?.s3_md5;
  if (
    check.etag !== undefined &&
    known?.s3_etag === check.etag &&
    recorded !== undefined &&
    (recorded !== check.etag || recorded === file?.md5)
  ) {
    return { ...fact, md5: recorded, ...(known.s3_crc64nvme ? { crc64nvme: known.s3_crc64nvme } : {}) };
  }
  // A listed ETag is the MD5 only when the object is not encrypted with KMS or a customer key: a HEAD says.
  if (check.fromListing && (check.md5 === null || (file !== undefined && check.md5 !== file.md5))) return 'confirm';
  if (check.md5 !== null) return fact;
  if (check.crc64nvme !== undefined) {
    // The checksum this tool recorded with the MD5, or the local file's own.
    if (known?.s3_crc64nvme === check.crc64nvme && recorded) return { ...fact, md5: recorded };
    if (file === undefined) return fact;
    // Loaded here, not at the thread's start: only an object whose ETag is no MD5 needs the SDK's CRC.
    const { crc64nvmeOfFile } = await import('../src/s3/checksum.js');
    return { ...fact, md5: (await crc64nvmeOfFile(file.path)) === check.crc64nvme ? file.md5 : null };
  }
  // A multipart ETag without a stored MD5: compare it with the local file's own multipart ETag.
  const same = file && check.etag ? await etagMatches(check.etag, file.md5, file.path) : null;
  return same === true ? { ...fact, md5: file!.md5 } : 'keep';
}

/** An actor that could not be assessed: its report says why; nothing else is known. */
function failedAssessment(report: ActorReport): Assessment {
  return { report, entries: [], tracked: [], good: {}, manifestUpdated: null, studio: NO_STUDIO_FACTS };
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

function differencesOf(
  facts: ActorFacts,
  entries: TrainingEntry[],
  statistics: TrainingStatistics,
  keepLegacy: boolean,
): Difference[] {
  const { actor } = facts;
  const differences: Difference[] = [];
  if (facts.manifest === null)
    differences.push({ actor: actor.name, file: actor.manifestPath, what: 'no manifest yet (would be created)' });
  differences.push(...entryDifferences(actor.name, facts.previous, entries));
  if (facts.manifest !== null)
    differences.push(...statisticsDifferences(actor.name, actor.manifestPath, facts.manifest.statistics, statistics));
  if (facts.legacyUrls !== null && !keepLegacy)
    differences.push({ actor: actor.name, file: facts.responsePath, what: 'legacy file not yet retired' });
  return differences;
}
