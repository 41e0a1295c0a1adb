/**
 * What the HTTP API answers (SPEC §6), as zod schemas: the server parses every body it sends with
 * these, and clients (the tests, the studio's UI) can parse what they receive with the same ones.
 */
import * as z from 'zod';
import { StatusSchema } from '../manifest/schema.js';

const md5 = z.string().regex(/^[0-9a-f]{32}$/);
const count = z.number().int().nonnegative();

/** One image of `GET /api/actors/:actorId/training-data`. */
export const TrainingImageSchema = z.strictObject({
  /** Position in `training_images` (natural filename order), from 0. */
  index: count,
  filename: z.string().min(1),
  s3_url: z.string().nullable(),
  local_exists: z.boolean(),
  /** The local file relative to the data root, as the manifest's `local_path` (`data/actors/…`); null when there is none. */
  local_path: z.string().nullable(),
  /** MD5 of the local file as it is now (rehashed when its size, mtime or inode changed). */
  md5_hash: md5.nullable(),
  size_mb: z.number().nonnegative().nullable(),
  modified_date: z.string().nullable(),
  status: StatusSchema,
  /** `images.<filename>.good` of `prompt_metadata.json`; false when it says nothing. */
  good: z.boolean(),
  /** False for an image the manifest does not list yet (`sync` would add it). */
  tracked: z.boolean(),
});
export type TrainingImage = z.infer<typeof TrainingImageSchema>;

/** The counts of one actor, in `training-data` and in each row of `GET /api/actors`. */
export const CountsShape = {
  total_count: count,
  synced_count: count,
  local_only_count: count,
  s3_only_count: count,
  out_of_sync_count: count,
  missing_count: count,
  /** Images with `tracked: false`. */
  untracked_count: count,
};

/** `GET /api/actors/:actorId/training-data`: the manifest plus a fresh look at the folder. */
export const TrainingDataSchema = z.strictObject({
  actor_id: z.string(),
  actor_name: z.string(),
  training_images: z.array(TrainingImageSchema),
  /** Absolute path of the actor's base image (`base_image/<name>_base.*` first), or null. */
  base_image_path: z.string().nullable(),
  ...CountsShape,
  /** The manifest's `training_data_updated`, or null when `sync` has not written one. */
  manifest_updated: z.string().nullable(),
});
export type TrainingData = z.infer<typeof TrainingDataSchema>;

/** One row of `GET /api/actors`. An actor whose files cannot be read has zero counts and an `error`. */
export const ActorRowSchema = z.strictObject({
  actor_id: z.string(),
  actor_name: z.string(),
  ...CountsShape,
  manifest_updated: z.string().nullable(),
  error: z.string().nullable(),
});
export type ActorRow = z.infer<typeof ActorRowSchema>;

/** `GET /api/actors`: every actor, sorted by folder name. */
export const ActorListSchema = z.strictObject({
  actors: z.array(ActorRowSchema),
});
export type ActorList = z.infer<typeof ActorListSchema>;

/** `GET /healthz`. */
export const HealthSchema = z.strictObject({
  status: z.literal('ok'),
});

/** Every answer other than 200. */
export const ErrorBodySchema = z.strictObject({
  error: z.string(),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;
