/**
 * The full-object CRC64NVME checksum S3 keeps for an object (SPEC §5), as S3 writes it: the 8 bytes in base64.
 * New uploads send it, the manifest records it (`s3_crc64nvme`), and a HEAD with `ChecksumMode: ENABLED`
 * returns it, so an object whose ETag is no MD5 (multipart, SSE-KMS) can be compared with a local file
 * without downloading it. The SDK's own implementation (native when `@aws-sdk/crc64-nvme-crt` is loaded).
 */
import { createReadStream } from 'node:fs';
import { Crc64Nvme } from '@aws-sdk/checksums/crc';

/** 12 base64 characters: 8 bytes, one `=` of padding. */
export const CRC64NVME_BASE64 = /^[A-Za-z0-9+/]{11}=$/;

/** An incremental CRC64NVME: `update` with each chunk, then `digest` once. */
export class Crc64 {
  readonly #hash = new Crc64Nvme();
  update(bytes: Uint8Array): void {
    this.#hash.update(bytes);
  }
  async digest(): Promise<string> {
    return Buffer.from(await this.#hash.digest()).toString('base64');
  }
}

/** @example await crc64nvme(Buffer.from('123456789')) // 'rosUhgp5mIg=' */
export async function crc64nvme(bytes: Uint8Array): Promise<string> {
  const crc = new Crc64();
  crc.update(bytes);
  return crc.digest();
}

/** {@link crc64nvme} of a file, read as a stream. */
export async function crc64nvmeOfFile(path: string): Promise<string> {
  const crc = new Crc64();
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) crc.update(chunk);
  return crc.digest();
}

/**
 * The full-object CRC64NVME a HEAD or GET stated, when it stated one: a composite (`…-N`) checksum of a
 * multipart upload is per part, not of the object.
 */
export function fullObjectCrc64(output: { ChecksumCRC64NVME?: string; ChecksumType?: string }): string | undefined {
  const value = output.ChecksumCRC64NVME;
  if (value === undefined || output.ChecksumType === 'COMPOSITE' || !CRC64NVME_BASE64.test(value)) return undefined;
  return value;
}
