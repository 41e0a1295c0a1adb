/**
 * Pure: what the studio's own UI reads from a manifest besides the training data we own (its handlers in
 * story-boards-ai/actor_maker `ui/config/routes/actors/`), so `serve` answers as they do. Read only: none of
 * these fields is ever written.
 */
import { toMb } from '../shared/classify.js';
import { isPlainObject } from './json-file.js';

export interface StudioFacts {
  /** `training_data_good` (the studio's own mark); false unless it is `true`. */
  training_data_good: boolean;
  /** `base_images[0].s3_url`, or null. */
  base_image_url: string | null;
  /** The manifest lists a base image. */
  lists_base_image: boolean;
  /** `lora_model` and `custom_lora_models` as the manifest has them (undefined when absent). */
  lora_model?: unknown;
  custom_lora_models?: unknown;
  /** The size each `training_data` entry records, in MB: what an image no longer on this machine had. */
  recorded_size_mb: Record<string, number>;
}

export const NO_STUDIO_FACTS: StudioFacts = {
  training_data_good: false,
  base_image_url: null,
  lists_base_image: false,
  recorded_size_mb: {},
};

/** The studio's fields of a parsed manifest (null: there is none). Values of the wrong type count as absent. */
export function studioFactsOf(manifest: Record<string, unknown> | null): StudioFacts {
  if (manifest === null) return NO_STUDIO_FACTS;
  const baseImages = Array.isArray(manifest.base_images) ? manifest.base_images : [];
  const first: unknown = baseImages[0];
  const url = isPlainObject(first) && typeof first.s3_url === 'string' && first.s3_url !== '' ? first.s3_url : null;
  const facts: StudioFacts = {
    training_data_good: manifest.training_data_good === true,
    base_image_url: url,
    lists_base_image: baseImages.length > 0,
    recorded_size_mb: recordedSizes(manifest.training_data),
  };
  if (manifest.lora_model !== undefined) facts.lora_model = manifest.lora_model;
  if (manifest.custom_lora_models !== undefined) facts.custom_lora_models = manifest.custom_lora_models;
  return facts;
}

function recordedSizes(entries: unknown): Record<string, number> {
  const sizes: Record<string, number> = {};
  if (!Array.isArray(entries)) return sizes;
  for (const entry of entries) {
    if (!isPlainObject(entry) || typeof entry.filename !== 'string') continue;
    const { size_mb: mb, size_bytes: bytes } = entry;
    const size =
      typeof mb === 'number' && mb >= 0 ? mb : typeof bytes === 'number' && bytes >= 0 ? toMb(bytes) : undefined;
    // Defined, not assigned: a filename `__proto__` stays a key.
    if (size !== undefined && Number.isFinite(size))
      Object.defineProperty(sizes, entry.filename, {
        value: size,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return sizes;
}
