/**
 * The errors the server answers with. Handlers throw these; `app.ts` turns them into a JSON body and a
 * status. Anything else thrown is an internal error: logged on the server, answered with a fixed
 * sentence, never with its message or stack (they may hold paths and code).
 */

/** An answer other than 200, with a message a person can act on. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers (`Allow`, `Retry-After`). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function badRequest(message: string): HttpError {
  return new HttpError(400, message);
}

export function notFound(message: string): HttpError {
  return new HttpError(404, message);
}

export function methodNotAllowed(method: string, allowed: readonly string[]): HttpError {
  return new HttpError(405, `${method} is not supported here; use ${allowed.join(' or ')}`, {
    Allow: allowed.join(', '),
  });
}

export function conflict(message: string): HttpError {
  return new HttpError(409, message);
}

/** The Host header names another site: a DNS-rebinding page must not read a loopback server. */
export function misdirected(host: string): HttpError {
  return new HttpError(
    421,
    `this server answers only to loopback names and those --allowed-host gives, not to Host ${JSON.stringify(host)}`,
  );
}

/** The actor's files could not be read; the message names the file relative to the data root. */
export function unreadable(message: string): HttpError {
  return new HttpError(500, message);
}

export function busy(): HttpError {
  return new HttpError(503, 'too many requests are waiting for the hashing workers; try again shortly', {
    'Retry-After': '1',
  });
}

/** The client closed the connection before its answer (nginx's 499): nobody reads it, nothing is logged. */
export function gone(): HttpError {
  return new HttpError(499, 'the client closed the connection before the answer was ready');
}

export const INTERNAL_ERROR = 'internal error; see the server log';
