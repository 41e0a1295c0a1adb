/**
 * `--upload-url-template` (SPEC §5): where `push` uploads an image whose actor has no S3 image yet. Small
 * and free of I/O, so the CLI can check a template while it parses the flags.
 */
import { messageOf } from '../errors.js';
import { parseS3Url } from '../shared/s3-url.js';

/** SPEC §5: where an image with no S3 URL goes when its actor has no other S3 image. */
export const DEFAULT_UPLOAD_URL_TEMPLATE =
  'https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/{actor_name}/{filename}';

/** The values of a template's placeholders. */
export interface UploadNames {
  actorName: string;
  actorId: string;
  filename: string;
}

/**
 * The template with `{actor_name}`, `{actor_id}` and `{filename}` replaced, each percent-encoded.
 * @example fillUploadUrlTemplate('s3://b/{actor_id}/{filename}', { actorName: '0000_x', actorId: '0000', filename: 'a b.jpg' }) // 's3://b/0000/a%20b.jpg'
 */
export function fillUploadUrlTemplate(template: string, names: UploadNames): string {
  return template
    .replaceAll('{actor_name}', encodeURIComponent(names.actorName))
    .replaceAll('{actor_id}', encodeURIComponent(names.actorId))
    .replaceAll('{filename}', encodeURIComponent(names.filename));
}

/**
 * Why `template` cannot place images, or undefined when it can. Filled in, it must be an S3 URL whose
 * last key segment is the image's filename: anything else sends every image to one key, or fails each
 * upload after the run has started.
 */
export function uploadUrlTemplateProblem(template: string): string | undefined {
  const example = 'e.g. https://<bucket>.s3.<region>.amazonaws.com/<prefix>/{actor_name}/{filename}';
  if (!template.includes('{filename}'))
    return `it has no {filename}; expected an S3 URL with {filename} as the last segment of its key, ${example}`;
  const sample: UploadNames = { actorName: '0000_sample', actorId: '0000', filename: '0000_sample_0.jpg' };
  const url = fillUploadUrlTemplate(template, sample);
  let filename: string;
  try {
    ({ filename } = parseS3Url(url));
  } catch (error) {
    return `with a sample image filled in, ${messageOf(error)}; ${example}`;
  }
  if (filename !== sample.filename)
    return `with a sample image filled in, URL ${JSON.stringify(url)} names the object "${filename}": {filename} must be the last segment of the key`;
  return undefined;
}
