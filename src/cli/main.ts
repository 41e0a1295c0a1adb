#!/usr/bin/env node
/**
 * The entry: the only place that exits. SIGINT/SIGTERM stop dispatching new actors and let in-flight
 * commits finish; a second signal exits at once (every manifest is still whole: commits are atomic).
 */
import { EXIT } from '../errors.js';
import { runCli } from './program.js';

const argv = process.argv.slice(2);

// A reader that went away (`actor-sync status | head -1`): the rest of the output goes nowhere and the run
// finishes as it would have, with its own exit code (its commits are made either way). Unhandled, the
// error event would end the process with a stack trace, possibly mid-run. Any other failure to write
// stdout (a full disk) loses results: it is said on stderr and the run exits 1.
let stdoutLost = false;
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE' || stdoutLost) return;
  stdoutLost = true;
  // It may come after the exit code is set: the last write fails once the command is done.
  if (!process.exitCode) process.exitCode = EXIT.problems;
  process.stderr.write(
    `actor-sync: cannot write to stdout (${error.message}); the results printed there are incomplete\n`,
  );
});
// Nothing can be said about stderr itself failing; the run goes on.
process.stderr.on('error', () => undefined);

const controller = new AbortController();
let signalExit: number | undefined;
let signalIsStop = false;

for (const [signal, code] of [
  ['SIGINT', EXIT.sigint],
  ['SIGTERM', EXIT.sigterm],
] as const) {
  const onSignal = () => {
    if (signalExit !== undefined) {
      // Again: stop at once, by the signal's own default action (the shell sees 128 + its number, the same
      // 130/143). Not process.exit: stopping a worker thread that is still loading its modules aborts Node.
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
      return;
    }
    signalExit = code;
    if (!signalIsStop)
      process.stderr.write(
        `\nactor-sync: ${signal}: finishing commits in flight, starting nothing new (again to stop at once)\n`,
      );
    controller.abort();
  };
  process.on(signal, onSignal);
}

const code = await runCli(argv, {
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
  signalIsStop: () => void (signalIsStop = true),
});
process.exitCode = signalIsStop ? code : (signalExit ?? (stdoutLost && code === EXIT.ok ? EXIT.problems : code));
// Pending stdout writes to a pipe are flushed by Node before the natural exit; nothing else keeps the loop alive.
