/** `actor-sync sync`: the nightly job. */
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

export interface SyncFlags extends CommonFlags, S3Flags {
  dryRun?: boolean;
  keepLegacy?: boolean;
  verify?: boolean;
  wait?: boolean;
}

export async function syncCommand(flags: SyncFlags, context: CommandContext): Promise<number> {
  const { result, summaries } = await runEngine(flags, 'sync', context, {
    dryRun: flags.dryRun,
    keepLegacy: flags.keepLegacy,
    verify: flags.verify,
    wait: flags.wait,
  });
  const summary = summaries.SyncSummarySchema.parse(summaries.summarize('sync', result));
  await report(context, flags, summary);
  return exitCodeOf(summary);
}

export function defineSync(run: (flags: SyncFlags) => Promise<void>): Command {
  return addS3Options(addCommonOptions(new Command('sync')))
    .description('scan, hash, merge and commit every manifest; retire response.json files')
    .option('--dry-run', 'compute and print everything, write nothing')
    .option('--keep-legacy', 'keep response.json files instead of retiring them')
    .option('--verify', 'rehash files whose size, mtime and inode did not change')
    .option('--wait', 'wait for another run on this data root instead of failing')
    .action(run);
}
