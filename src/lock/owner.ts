/** The owner file of a lock (`<lock>/owner.json`), apart from lock.ts so that zod loads only to read one. */
import * as z from 'zod';

/** Who holds a lock: `<lock>/owner.json`. */
export const LockOwnerSchema = z.object({
  pid: z.number().int().positive(),
  hostname: z.string(),
  /** ISO time the holder took the lock. */
  started: z.string(),
  /** Tells this holder from an earlier process that had the same pid (a restarted container). */
  token: z.string(),
});
export type LockOwner = z.infer<typeof LockOwnerSchema>;
