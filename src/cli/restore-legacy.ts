/** `actor-sync restore-legacy [ACTOR…]`: rebuild response.json from the manifests (the rollback path). */
import { Command } from 'commander';
import { addCommonOptions, type CommandContext, type CommonFlags } from './common.js';

export interface RestoreFlags extends CommonFlags {
  force?: boolean;
  dryRun?: boolean;
  wait?: boolean;
}

export async function restoreCommand(actors: string[], flags: RestoreFlags, context: CommandContext): Promise<number> {
  const { restoreLegacy } = await import('../engine/restore-legacy.js');
  const selected = [...flags.actor, ...actors];
  const result = await restoreLegacy({
    root: flags.root,
    actorsDir: flags.actorsDir,
    manifestsDir: flags.manifestsDir,
    actors: selected.length > 0 ? selected : undefined,
    force: flags.force,
    dryRun: flags.dryRun,
    wait: flags.wait,
  });
  context.stderr.write((await import('../engine/summary.js')).formatProblems('error', result.errors));
  if (flags.json)
    context.stdout.write(
      `${JSON.stringify({ command: 'restore-legacy', dry_run: result.dryRun, actors: result.actors, errors: result.errors }, null, 2)}\n`,
    );
  else if (!flags.quiet) {
    const count = (o: string) => result.actors.filter((a) => a.outcome === o).length;
    const would = result.dryRun ? 'would be ' : '';
    context.stdout.write(
      `restore-legacy: ${count('restored')} response.json ${would}restored, ${count('kept')} kept (exists; --force to overwrite), ${count('no-urls')} without URLs, ${result.errors.length} failed\n`,
    );
  }
  return result.errors.length > 0 ? 1 : 0;
}

export function defineRestore(run: (actors: string[], flags: RestoreFlags) => Promise<void>): Command {
  return addCommonOptions(new Command('restore-legacy'))
    .description("rebuild response.json from each manifest's URLs (the rollback path)")
    .argument('[actors...]', 'actor ids or names (default: all)')
    .option('--force', 'overwrite an existing response.json')
    .option('--dry-run', 'report, write nothing')
    .option('--wait', 'wait for another run on this data root instead of failing')
    .action(run);
}
