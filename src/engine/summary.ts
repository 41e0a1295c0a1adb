/**
 * The result of a run, as one `--json` document (zod schemas, exported from the package) and as text
 * for people. Both are built from a SyncReport here and nowhere else.
 */
import * as z from 'zod';
import { STATUSES } from '../manifest/schema.js';
import { md5Engine } from '../md5/engine.js';
import { printable } from '../shared/printable.js';
import type { ActorReport, SyncReport } from './sync.js';

const ProblemSchema = z.object({ actor: z.string(), file: z.string(), reason: z.string() });

const CountsSchema = z.object({
  images: z.number().int(),
  synced: z.number().int(),
  local_only: z.number().int(),
  s3_only: z.number().int(),
  out_of_sync: z.number().int(),
  missing: z.number().int(),
  size_bytes: z.number().int(),
});
export type Counts = z.infer<typeof CountsSchema>;

/** `actor-sync sync --json` (and the base of `status` and `check`). */
export const SyncSummarySchema = z.object({
  command: z.string(),
  dry_run: z.boolean(),
  root: z.string(),
  actors: z.object({
    selected: z.number().int(),
    processed: z.number().int(),
    failed: z.number().int(),
    not_run: z.number().int(),
  }),
  files_hashed: z.number().int(),
  bytes_hashed: z.number().int(),
  hashes_reused: z.number().int(),
  manifests: z.object({
    written: z.number().int(),
    created: z.number().int(),
    unchanged: z.number().int(),
    failed: z.number().int(),
  }),
  legacy: z.object({ retired: z.number().int(), kept: z.number().int(), failed: z.number().int() }),
  totals: CountsSchema,
  errors: z.array(ProblemSchema),
  warnings: z.array(ProblemSchema),
  /** Requests sent to S3 by kind (`--remote`, push, pull): LIST requests, not one HEAD per image. */
  s3_requests: z
    .object({ list: z.number().int(), head: z.number().int(), put: z.number().int(), get: z.number().int() })
    .optional(),
  interrupted: z.boolean(),
  duration_ms: z.number(),
  /** Which MD5 hashed: the WebAssembly lanes, or node:crypto where they did not load. */
  md5_engine: z.enum(['wasm-lanes', 'node:crypto']),
});
export type SyncSummary = z.infer<typeof SyncSummarySchema>;

/** `actor-sync status --json`: the summary plus each actor's counts. */
export const StatusSummarySchema = SyncSummarySchema.extend({
  per_actor: z.array(CountsSchema.extend({ id: z.string(), name: z.string(), failed: z.boolean() })),
});
export type StatusSummary = z.infer<typeof StatusSummarySchema>;

/** `actor-sync check --json`: what `sync` would change, actor / file / what. */
export const CheckSummarySchema = SyncSummarySchema.extend({
  ok: z.boolean(),
  differences: z.array(z.object({ actor: z.string(), file: z.string(), what: z.string() })),
});
export type CheckSummary = z.infer<typeof CheckSummarySchema>;

/** `actor-sync push --json` and `pull --json`: the summary plus every transfer. */
export const TransferSummarySchema = SyncSummarySchema.extend({
  transfers: z.array(
    z.object({
      actor: z.string(),
      filename: z.string(),
      url: z.string(),
      bytes: z.number().int(),
      error: z.string().optional(),
    }),
  ),
});
export type TransferSummary = z.infer<typeof TransferSummarySchema>;

export function countsOf(actor: ActorReport): Counts {
  const s = actor.statistics;
  return {
    images: s?.training_images_count ?? 0,
    synced: s?.training_synced_count ?? 0,
    local_only: s?.training_local_only_count ?? 0,
    s3_only: s?.training_s3_only_count ?? 0,
    out_of_sync: s?.training_out_of_sync_count ?? 0,
    missing: s?.training_missing_count ?? 0,
    size_bytes: s?.training_data_size_bytes ?? 0,
  };
}

export function summarize(command: string, report: SyncReport): SyncSummary {
  const count = <T>(pick: (a: ActorReport) => T, value: T) => report.actors.filter((a) => pick(a) === value).length;
  const totals: Counts = { images: 0, synced: 0, local_only: 0, s3_only: 0, out_of_sync: 0, missing: 0, size_bytes: 0 };
  for (const actor of report.actors) {
    const counts = countsOf(actor);
    for (const key of Object.keys(totals) as (keyof Counts)[]) totals[key] += counts[key];
  }
  return {
    command,
    dry_run: report.dryRun,
    root: report.data.root,
    actors: {
      selected: report.actors.length,
      processed: report.actors.filter((a) => a.manifest !== 'not-run').length,
      failed: report.actors.filter((a) => a.errors.length > 0).length,
      not_run: count((a) => a.manifest, 'not-run'),
    },
    files_hashed: sum(report.actors, (a) => a.hashedFiles),
    bytes_hashed: sum(report.actors, (a) => a.hashedBytes),
    hashes_reused: sum(report.actors, (a) => a.reusedFiles),
    manifests: {
      written: count((a) => a.manifest, 'written'),
      created: count((a) => a.manifest, 'created'),
      unchanged: count((a) => a.manifest, 'unchanged'),
      failed: count((a) => a.manifest, 'failed'),
    },
    legacy: {
      retired: count((a) => a.legacy, 'retired'),
      kept: count((a) => a.legacy, 'kept'),
      failed: count((a) => a.legacy, 'failed'),
    },
    totals,
    errors: report.actors.flatMap((a) => a.errors),
    warnings: [...report.warnings, ...report.actors.flatMap((a) => a.warnings)],
    ...(report.s3Requests ? { s3_requests: report.s3Requests } : {}),
    interrupted: report.interrupted,
    duration_ms: Math.round(report.durationMs),
    md5_engine: md5Engine(),
  };
}

function sum(actors: ActorReport[], pick: (a: ActorReport) => number): number {
  return actors.reduce((total, actor) => total + pick(actor), 0);
}

/** The final summary for people (stdout). */
export function formatSummary(summary: SyncSummary): string {
  const mb = summary.bytes_hashed / 1048576;
  const seconds = summary.duration_ms / 1000;
  const { manifests: m, legacy } = summary;
  // `status` describes the state of the files; a run (or a dry run of one) says what it did (or would do).
  const state = summary.command === 'status';
  const would = summary.dry_run && !state ? 'would be ' : '';
  const lines = [
    `${summary.command}${summary.dry_run && !state ? ' (dry run: nothing written)' : ''}: ${summary.actors.processed} actors, ${imagesOf(summary.totals)}`,
    `  hashed:    ${summary.files_hashed} files, ${mb.toFixed(1)} MB; ${summary.hashes_reused} hashes reused`,
    state
      ? `  manifests: ${m.written} need writing, ${m.created} to create, ${m.unchanged} up to date, ${m.failed} failed`
      : `  manifests: ${m.written} ${would}written, ${m.created} ${would}created, ${m.unchanged} unchanged, ${m.failed} failed`,
    `  legacy:    ${legacy.retired} response.json ${state ? 'to retire' : `${would}retired`}, ${legacy.kept} kept, ${legacy.failed} failed`,
    `  status:    ${STATUSES.map((s) => `${summary.totals[s]} ${s}`).join(', ')}`,
    `  problems:  ${summary.errors.length} errors, ${summary.warnings.length} warnings`,
    `  time:      ${seconds.toFixed(2)} s${seconds > 0 ? `, ${(mb / seconds).toFixed(1)} MB/s hashed` : ''}`,
  ];
  if (summary.s3_requests) {
    const r = summary.s3_requests;
    lines.push(`  s3:        ${r.list} LIST, ${r.head} HEAD, ${r.put} PUT, ${r.get} GET requests`);
  }
  if (summary.interrupted) lines.push(`  interrupted: ${summary.actors.not_run} actors not run; run again to finish`);
  return `${lines.join('\n')}\n`;
}

/** `4953 images (24 only in S3)`: the total counts every entry, those without a local file too. */
function imagesOf(totals: Counts): string {
  const remoteOnly = [
    totals.s3_only > 0 ? `${totals.s3_only} only in S3` : '',
    totals.missing > 0 ? `${totals.missing} missing` : '',
  ].filter(Boolean);
  return `${totals.images} images${remoteOnly.length > 0 ? ` (${remoteOnly.join(', ')})` : ''}`;
}

/** One line a problem, for stderr: `error: <actor>: <file>: <reason>` (control characters escaped: see printable.ts). */
export function formatProblems(kind: 'error' | 'warning', problems: SyncSummary['errors']): string {
  return problems
    .map((p) => `${printable(`${kind}: ${p.actor ? `${p.actor}: ` : ''}${p.file}: ${p.reason}`)}\n`)
    .join('');
}

/** The per-actor table of `status`. */
export function formatStatusTable(rows: StatusSummary['per_actor']): string {
  const header = ['actor', 'images', ...STATUSES];
  const body = rows.map((r) =>
    [printable(r.failed ? `${r.name} (failed)` : r.name), r.images, ...STATUSES.map((s) => r[s])].map(String),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const format = (row: string[]) =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return `${[header, ...body].map(format).join('\n')}\n`;
}
