/** Where `serve` listens unless told otherwise; apart from app.ts so the CLI's help loads no server code. */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8787;
