/** The MD5 of bytes in memory, in hex: a module of its own, so that using it loads none of the file hashing. */
import { createHash } from 'node:crypto';

export function md5Hex(bytes: string | Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}
