/** The package's public API: the engine, the pure core and the `--json` schemas. */
export { runSync, type SyncOptions, type SyncReport, type ActorReport } from './engine/sync.js';
export {
  classify,
  naturalCompare,
  statusOf,
  type ClassifyInput,
  type ClassifyResult,
  type LocalFile,
} from './shared/classify.js';
export { parseS3Url, isSafeFilename, type S3Location } from './shared/s3-url.js';
export {
  SyncSummarySchema,
  StatusSummarySchema,
  CheckSummarySchema,
  type SyncSummary,
  type StatusSummary,
  type CheckSummary,
} from './engine/summary.js';
export { ManifestSchema, TrainingEntrySchema, STATUSES, type Status, type TrainingEntry } from './manifest/schema.js';
export { runCli } from './cli/program.js';
export { startServer } from './server/app.js';
export {
  TrainingDataSchema,
  TrainingImageSchema,
  ActorListSchema,
  ActorRowSchema,
  HealthSchema,
  ErrorBodySchema,
} from './server/schema.js';
export { TransferSummarySchema, type TransferSummary } from './engine/summary.js';
export { BenchSummarySchema, type BenchSummary } from './engine/throughput.js';
