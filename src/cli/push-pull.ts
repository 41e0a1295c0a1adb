/** `actor-sync push` and `actor-sync pull`: S3 transfers, then manifests committed. */
import { Command, InvalidArgumentError } from 'commander';
import { printable } from '../shared/printable.js';
import { uploadUrlTemplateProblem } from '../s3/upload-url.js';
import {
  addCommonOptions,
  addS3Options,
  createBatchPool,
  exitCodeOf,
  report,
  s3OptionsOf,
  type CommandContext,
  type CommonFlags,
  type S3Flags,
} from './common.js';

export interface TransferFlags extends CommonFlags, S3Flags {
  dryRun?: boolean;
  keepLegacy?: boolean;
  wait?: boolean;
  repair?: boolean;
  uploadUrlTemplate?: string;
  allowOverwrite?: boolean;
}

export async function transferCommand(
  kind: 'push' | 'pull',
  flags: TransferFlags,
  context: CommandContext,
): Promise<number> {
  const [{ runPush, runPull }, summaries, { createProgress }, { parseShard }] = await Promise.all([
    import('../engine/push-pull.js'),
    import('../engine/summary.js'),
    import('../engine/progress.js'),
    import('../engine/shard.js'),
  ]);
  const run = kind === 'push' ? runPush : runPull;
  const shard = parseShard(flags.shard, flags.shardCount);
  // One pool for both of the command's passes.
  const pool = await createBatchPool(flags.workers);
  const result = await run({
    root: flags.root,
    actorsDir: flags.actorsDir,
    manifestsDir: flags.manifestsDir,
    actors: flags.actor.length > 0 ? flags.actor : undefined,
    pool,
    shard,
    dryRun: flags.dryRun,
    keepLegacy: flags.keepLegacy,
    wait: flags.wait,
    repair: flags.repair,
    uploadUrlTemplate: flags.uploadUrlTemplate,
    allowOverwrite: flags.allowOverwrite,
    s3: s3OptionsOf(flags),
    signal: context.signal,
    progress: await createProgress({
      label: kind,
      quiet: flags.quiet ?? false,
      stream: context.stderr as NodeJS.WriteStream,
    }),
  }).finally(() => pool.destroy());
  const summary = summaries.TransferSummarySchema.parse({
    ...summaries.summarize(kind, result),
    transfers: result.transfers,
  });
  const verb = kind === 'push' ? 'upload' : 'download';
  const failed = result.transfers.filter((t) => t.error).length;
  const lines = result.transfers
    .map(
      (t) =>
        `${printable(`${flags.dryRun ? `would ${verb}` : t.error ? 'failed' : `${verb}ed`}: ${t.actor} / ${t.filename} ${kind === 'push' ? '→' : '←'} ${t.url}`)}\n`,
    )
    .join('');
  const verdict = `${kind}: ${result.transfers.length - failed} ${verb}s${flags.dryRun ? ' planned' : ''}, ${failed} failed\n`;
  await report(context, flags, summary, lines, verdict);
  return exitCodeOf(summary);
}

function define(kind: 'push' | 'pull', description: string, run: (flags: TransferFlags) => Promise<void>): Command {
  const command = addS3Options(addCommonOptions(new Command(kind)), false)
    .description(description)
    .option('--dry-run', 'list the transfers, change nothing')
    .option('--keep-legacy', 'keep response.json files')
    .option('--wait', 'wait for another run on this data root instead of failing');
  if (kind === 'push') {
    command
      .option('--repair', 're-upload out_of_sync images (the local file wins)')
      .option(
        '--allow-overwrite',
        'upload even when the store does not support conditional writes (501), which could replace an object unseen',
      )
      .option(
        '--upload-url-template <url>',
        'where an image goes when its actor has no S3 image yet ({actor_name}, {actor_id}, {filename})',
        uploadUrlTemplate,
      );
  }
  return command.action(run);
}

// Checked while the flags are parsed: a bad template would otherwise plan every upload, then fail each one.
function uploadUrlTemplate(value: string): string {
  const problem = uploadUrlTemplateProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

export const definePush = (run: (flags: TransferFlags) => Promise<void>) =>
  define('push', 'upload local_only images (--repair: also out_of_sync), then commit manifests', run);
export const definePull = (run: (flags: TransferFlags) => Promise<void>) =>
  define('pull', 'download s3_only images, verify their MD5, then commit manifests', run);
