/** `actor-sync check`: for CI, a `sync --dry-run` that fails when `sync` would change anything. */
import { Command } from 'commander';
import { printable } from '../shared/printable.js';
import {
  addCommonOptions,
  addS3Options,
  type S3Flags,
  exitCodeOf,
  report,
  runEngine,
  type CommandContext,
  type CommonFlags,
} from './common.js';

export interface CheckFlags extends CommonFlags, S3Flags {
  requireSynced?: boolean;
  keepLegacy?: boolean;
}

export async function checkCommand(flags: CheckFlags, context: CommandContext): Promise<number> {
  // --require-synced names each image that is not synced: the entries of every actor that has one.
  const { result, summaries } = await runEngine(flags, 'check', context, { keepLegacy: flags.keepLegacy }, [], {
    entries: flags.requireSynced ? 'unsynced' : undefined,
    // No actor folder at all is a wrong --root or --actors-dir, not a root in sync: exit 2.
    requireActors: true,
  });
  const { CheckSummarySchema, summarize } = summaries;
  // Only what `sync` leaves behind counts: the entries as they would be after it.
  const notSynced = (actor: (typeof result.actors)[number]) =>
    (flags.requireSynced ? (actor.entries ?? []) : [])
      .filter((e) => e.status !== 'synced')
      .map((e) => ({ actor: actor.name, file: e.filename, what: `${e.status} (--require-synced)` }));
  const differences = result.actors.flatMap((a) => [...a.differences, ...notSynced(a)]);
  const base = summarize('check', result);
  const summary = CheckSummarySchema.parse({
    ...base,
    ok: differences.length === 0 && base.errors.length === 0,
    differences,
  });
  const lines = differences.map((d) => `${printable(`${d.actor} / ${d.file || '-'} / ${d.what}`)}\n`).join('');
  const verdict = summary.ok
    ? 'check: in sync\n'
    : `check: ${differences.length} differences, ${base.errors.length} errors\n`;
  await report(context, flags, summary, lines, verdict);
  return exitCodeOf(summary, differences.length > 0);
}

export function defineCheck(run: (flags: CheckFlags) => Promise<void>): Command {
  return addS3Options(addCommonOptions(new Command('check')))
    .description('exit 1 when sync would change anything (a dry run for CI)')
    .option('--require-synced', 'also fail unless every image is synced')
    .option('--keep-legacy', 'do not count response.json files still present as a difference')
    .action(run);
}
