/**
 * The manifest as this tool reads it. A manifest holds much more than training data (metadata, base and
 * scene images, statistics…): every field we do not own passes through untouched and in its order, so
 * the schemas are loose objects and only the owned fields are checked.
 */
import * as z from 'zod';

/** The sync states of SPEC §3. */
export const STATUSES = ['synced', 'local_only', 's3_only', 'out_of_sync', 'missing'] as const;
export const StatusSchema = z.enum(STATUSES);
export type Status = z.infer<typeof StatusSchema>;

const md5 = z.string().regex(/^[0-9a-f]{32}$/, 'an MD5 is 32 lower-case hex digits');

/** One `training_data` entry as written by this tool (unknown extra keys are kept). */
export const TrainingEntrySchema = z.looseObject({
  filename: z.string().min(1),
  local_path: z.string().nullable().optional(),
  size_bytes: z.number().int().nonnegative().nullable().optional(),
  size_mb: z.number().nullable().optional(),
  modified_timestamp: z.number().nullable().optional(),
  modified_date: z.string().nullable().optional(),
  md5_hash: md5.nullable().optional(),
  s3_url: z.string().nullable().optional(),
  s3_md5: md5.nullable().optional(),
  s3_exists: z.boolean().optional(),
  status: StatusSchema.optional(),
  duplicate_of: z.string().optional(),
  s3_etag: z.string().optional(),
  /** The object's full-object CRC64NVME checksum (base64), as this tool's upload sent it or a HEAD returned it. */
  s3_crc64nvme: z.string().optional(),
  s3_checked_at: z.string().optional(),
  /** Stat token that lets a later run reuse `md5_hash`: mtime in nanoseconds (a string: it exceeds 2^53) and inode. */
  mtime_ns: z.string().regex(/^\d+$/).nullable().optional(),
  inode: z.number().int().nonnegative().nullable().optional(),
});
export type TrainingEntry = z.infer<typeof TrainingEntrySchema>;

/** The top-level fields this tool owns in a manifest, in the order a new manifest gets them. */
export const OWNED_FIELDS = ['training_data', 'training_data_updated', 'statistics'] as const;

/** The statistics keys this tool owns; others in `statistics` are kept. */
export const OWNED_STATISTICS = [
  'training_images_count',
  'training_synced_count',
  'training_local_only_count',
  'training_s3_only_count',
  'training_out_of_sync_count',
  'training_missing_count',
  'training_data_size_bytes',
  'training_data_size_mb',
] as const;
export type TrainingStatistics = Record<(typeof OWNED_STATISTICS)[number], number>;

/** A manifest file: an object (never an array) whose owned fields, when present, have the right shape. */
export const ManifestSchema = z.looseObject({
  character_id: z.string().optional(),
  character_name: z.string().optional(),
  training_data: z.array(TrainingEntrySchema).optional(),
  training_data_updated: z.string().optional(),
  statistics: z.looseObject({}).optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;
