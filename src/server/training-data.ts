/**
 * Pure: one actor's assessment (the function `sync` runs, see `assess.ts`) → the API's answer. No I/O;
 * the statuses are the assessment's own, so the API and `sync` can never disagree.
 */
import type { Assessment } from '../../workers/assess.js';
import type { Actor } from '../engine/discover.js';
import { StatusSchema } from '../manifest/schema.js';
import type { StudioFacts } from '../manifest/studio.js';
import type { ActorFile } from './base-image.js';
import type { ActorRow, TrainingData, TrainingImage } from './schema.js';

type Counts = Pick<
  TrainingData,
  | 'total_count'
  | 'synced_count'
  | 'local_only_count'
  | 's3_only_count'
  | 'out_of_sync_count'
  | 'missing_count'
  | 'untracked_count'
>;

/** The URL path under which this server answers the actor's file `folder/filename` (see base-image.ts). */
export function dataPathOf(actor: Actor, folder: string, filename: string): string {
  return `/data/actors/${[actor.name, folder, filename].map(encodeURIComponent).join('/')}`;
}

/**
 * The API's view of an actor whose assessment succeeded; `baseImage`, the actor's base image on this
 * machine as `findBaseImage` finds it.
 */
export function trainingDataOf(actor: Actor, assessment: Assessment, baseImage: ActorFile | null): TrainingData {
  const { studio } = assessment;
  const counted = assessment.report.statistics?.training_images_count;
  if (counted !== assessment.entries.length) {
    throw new Error(
      `the assessment of ${actor.name} counts ${counted} images but carries ${assessment.entries.length} entries (was it asked to explain?)`,
    );
  }
  const tracked = new Set(assessment.tracked);
  const images: TrainingImage[] = assessment.entries.map((entry, index) => {
    const local = entry.md5_hash != null && entry.local_path != null;
    return {
      index,
      filename: entry.filename,
      s3_url: entry.s3_url ?? null,
      local_exists: local,
      // Where this server answers with the file (the studio's UI puts it in an <img src>): never a host path.
      local_path: local ? dataPathOf(actor, 'training_data', entry.filename) : null,
      md5_hash: entry.md5_hash ?? null,
      size_mb: entry.size_mb ?? studio.recorded_size_mb[entry.filename] ?? 0,
      modified_date: entry.modified_date ?? null,
      // classify() sets a status on every entry it returns; a missing one is a bug, caught here.
      status: StatusSchema.parse(entry.status),
      good: assessment.good[entry.filename] ?? false,
      tracked: tracked.has(entry.filename),
    };
  });
  return {
    actor_id: actor.id,
    actor_name: actor.name,
    training_images: images,
    base_image_path: baseImage && dataPathOf(actor, baseImage.folder, baseImage.filename),
    base_image_url: studio.base_image_url,
    has_base_image: studio.lists_base_image || baseImage !== null,
    training_data_good: studio.training_data_good,
    ...countsOf(images),
    manifest_updated: assessment.manifestUpdated,
  };
}

/** One row of the actor list; `error` when the actor could not be assessed. */
export function actorRowOf(
  actor: Actor,
  data: TrainingData | null,
  studio: StudioFacts,
  error: string | null,
): ActorRow {
  const counts = data ? pickCounts(data) : countsOf([]);
  const row: ActorRow = {
    training_data: {
      count: counts.total_count,
      synced: counts.total_count > 0 && counts.synced_count === counts.total_count,
    },
    training_data_good: studio.training_data_good,
    custom_models_count: Array.isArray(studio.custom_lora_models) ? studio.custom_lora_models.length : 0,
    custom_models_good: false,
    production_synced: false,
    actor_id: actor.id,
    actor_name: actor.name,
    ...counts,
    manifest_updated: data?.manifest_updated ?? null,
    error,
  };
  if (studio.lora_model !== undefined) row.lora_model = studio.lora_model;
  if (studio.custom_lora_models !== undefined) row.custom_lora_models = studio.custom_lora_models;
  return row;
}

function countsOf(images: readonly Pick<TrainingImage, 'status' | 'tracked'>[]): Counts {
  const count = (status: TrainingImage['status']) => images.filter((image) => image.status === status).length;
  return {
    total_count: images.length,
    synced_count: count('synced'),
    local_only_count: count('local_only'),
    s3_only_count: count('s3_only'),
    out_of_sync_count: count('out_of_sync'),
    missing_count: count('missing'),
    untracked_count: images.filter((image) => !image.tracked).length,
  };
}

function pickCounts(data: TrainingData): Counts {
  const {
    total_count,
    synced_count,
    local_only_count,
    s3_only_count,
    out_of_sync_count,
    missing_count,
    untracked_count,
  } = data;
  return {
    total_count,
    synced_count,
    local_only_count,
    s3_only_count,
    out_of_sync_count,
    missing_count,
    untracked_count,
  };
}
