/**
 * What the HTTP API answers (SPEC §6), as zod schemas: the server parses every body it sends with
 * these (the actor list entry by entry: our rows, and the studio's entries when it reads them), and clients
 * (the tests, the studio's UI) can parse what they receive with the same ones.
 */
import * as z from 'zod';
import { StatusSchema } from '../manifest/schema.js';

const md5 = z.string().regex(/^[0-9a-f]{32}$/);
const count = z.number().int().nonnegative();
/** A URL path under `/data/actors/` that this server answers with an image: never a host path. */
const dataPath = z.string().startsWith('/data/actors/');

/** One image of `GET /api/actors/:actorId/training-data`. */
export const TrainingImageSchema = z.strictObject({
  /** Position in `training_images` (natural filename order), from 0. */
  index: count,
  filename: z.string().min(1),
  s3_url: z.string().nullable(),
  local_exists: z.boolean(),
  /** The local file as a URL path this server answers (`/data/actors/<name>/training_data/<file>`); null when there is none. */
  local_path: dataPath.nullable(),
  /** MD5 of the local file as it is now (rehashed when its size, mtime or inode changed). */
  md5_hash: md5.nullable(),
  /** The local file's size; for an image not on this machine, the size the manifest records (0 when it records none). */
  size_mb: z.number().nonnegative(),
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
  /** The actor's base image as a URL path (`/data/actors/<name>/base_image/…`, else its poster frame), or null. */
  base_image_path: dataPath.nullable(),
  /** The manifest's first base image's S3 URL, or null. */
  base_image_url: z.string().nullable(),
  /** The manifest lists a base image, or one is on this machine. */
  has_base_image: z.boolean(),
  /** The manifest's `training_data_good` (the studio's own mark). */
  training_data_good: z.boolean(),
  ...CountsShape,
  /** The manifest's `training_data_updated`, or null when `sync` has not written one. */
  manifest_updated: z.string().nullable(),
});
export type TrainingData = z.infer<typeof TrainingDataSchema>;

/**
 * Our part of an actor's entry in `GET /api/actors`, beside the studio's: the studio's `training_data`
 * (`synced`: the actor has images and every one is `synced`), the fields the studio's newest handler adds
 * from the manifest, and our counts. An actor whose files cannot be read has zero counts and an `error`.
 */
export const ActorRowSchema = z.strictObject({
  training_data: z.strictObject({ count, synced: z.boolean() }),
  training_data_good: z.boolean(),
  lora_model: z.unknown().optional(),
  custom_lora_models: z.unknown().optional(),
  custom_models_count: count,
  /** Always false, as in the studio's handler (not tracked there yet). */
  custom_models_good: z.literal(false),
  production_synced: z.literal(false),
  actor_id: z.string(),
  actor_name: z.string(),
  ...CountsShape,
  manifest_updated: z.string().nullable(),
  error: z.string().nullable(),
});
export type ActorRow = z.infer<typeof ActorRowSchema>;

/** An actor's entry in the studio's `data/actorsData.json`: `id` and `name`, and whatever else it holds. */
export const StudioActorSchema = z.looseObject({
  id: z.union([z.number(), z.string()]),
  name: z.string(),
});
export type StudioActor = z.infer<typeof StudioActorSchema>;

/**
 * `GET /api/actors`, the studio's bare array: each entry of `data/actorsData.json` in its order, kept as is
 * with our row over it, then the actor folders it does not name as `{id, name}` with theirs. An entry whose
 * actor has no folder here is kept as is, alone.
 */
/** An actor of the list that has a folder here: its studio entry (or `{id, name}`) with our row over it. */
export const ListedActorSchema = StudioActorSchema.extend(ActorRowSchema.shape);
export const ActorListSchema = z.array(z.union([ListedActorSchema, StudioActorSchema]));
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
