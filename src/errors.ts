/**
 * Typed errors. Only the CLI's program (`src/cli/program.ts`) turns them into exit codes; everything else
 * throws them or, for per-actor failures, collects them as data (`ActorFailure`).
 */

/** Exit codes of SPEC §4. */
export const EXIT = {
  ok: 0,
  problems: 1,
  usage: 2,
  sigint: 130,
  sigterm: 143,
} as const;

/** An error the user can fix by changing how the command is called or configured (exit 2). */
export class UsageError extends Error {
  readonly exitCode = EXIT.usage;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Another run holds the data root's lock (exit 2). */
export class LockHeldError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'LockHeldError';
  }
}

/**
 * A problem with one input file of one actor: invalid JSON, a wrong shape, an unsafe filename in a URL,
 * an unreadable image. Carries the file so the report can name it; the actor is left unchanged.
 */
export class InputError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'InputError';
  }
}

/** A per-actor failure, reported in the summary; it never aborts the batch. */
export interface ActorFailure {
  actor: string;
  file: string;
  reason: string;
}

/** The message of anything thrown, without a stack. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
