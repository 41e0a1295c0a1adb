/** The command line: one commander program, one subcommand per file; returns an exit code, never exits. */
import { Command, CommanderError } from 'commander';
import { EXIT, messageOf, UsageError } from '../errors.js';
import { printable } from '../shared/printable.js';
import { benchCommand, defineBench } from './bench.js';
import { checkCommand, defineCheck } from './check.js';
import type { CommandContext } from './common.js';
import { defineServe, serveCommand } from './serve.js';
import { defineRestore, restoreCommand } from './restore-legacy.js';
import { defineStatus, statusCommand } from './status.js';
import { defineSync, syncCommand } from './sync.js';
import { definePull, definePush, transferCommand } from './push-pull.js';

export async function runCli(argv: string[], context: CommandContext): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command('actor-sync')
    .description('Makes each actor manifest the single source of truth for its training images.')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => context.stdout.write(s), writeErr: (s) => context.stderr.write(s) });
  const commands = [
    defineSync(async (flags) => void (code = await syncCommand(flags, context))),
    defineStatus(async (actors, flags) => void (code = await statusCommand(actors, flags, context))),
    defineCheck(async (flags) => void (code = await checkCommand(flags, context))),
    defineServe(async (flags) => void (code = await serveCommand(flags, context))),
    defineBench(async (flags) => void (code = await benchCommand(flags, context))),
    definePush(async (flags) => void (code = await transferCommand('push', flags, context))),
    definePull(async (flags) => void (code = await transferCommand('pull', flags, context))),
    defineRestore(async (actors, flags) => void (code = await restoreCommand(actors, flags, context))),
  ];
  for (const command of commands) {
    program.addCommand(
      command
        .exitOverride()
        .configureOutput({ writeOut: (s) => context.stdout.write(s), writeErr: (s) => context.stderr.write(s) }),
    );
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help asked for (`--help`, `help`) exits 0; help shown because no command was given is a usage error.
      const help =
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.help' ||
        error.code === 'commander.version';
      return help && error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof UsageError) {
      context.stderr.write(`actor-sync: ${printable(error.message)}\n`);
      return error.exitCode;
    }
    context.stderr.write(`actor-sync: unexpected failure: ${printable(messageOf(error))}\n`);
    if (process.env.ACTOR_SYNC_DEBUG) context.stderr.write(`${(error as Error).stack}\n`);
    return EXIT.problems;
  }
}
