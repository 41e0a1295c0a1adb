/** `actor-sync status [ACTOR…]`: per-actor counts from the manifests and a fresh look at local files. */
import { Command } from 'commander';
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

export async function statusCommand(
  actors: string[],
  flags: CommonFlags & S3Flags,
  context: CommandContext,
): Promise<number> {
  const { result, summaries } = await runEngine(flags, 'status', context, { dryRun: true }, actors);
  const { countsOf, formatStatusTable, StatusSummarySchema, summarize } = summaries;
  const perActor = result.actors.map((a) => ({ id: a.id, name: a.name, failed: a.errors.length > 0, ...countsOf(a) }));
  const summary = StatusSummarySchema.parse({ ...summarize('status', result), per_actor: perActor });
  await report(context, flags, summary, formatStatusTable(perActor));
  return exitCodeOf(summary);
}

export function defineStatus(run: (actors: string[], flags: CommonFlags & S3Flags) => Promise<void>): Command {
  return addS3Options(addCommonOptions(new Command('status')))
    .description('per-actor counts and totals; writes nothing')
    .argument('[actors...]', 'actor ids or names (default: all)')
    .action(run);
}
