/**
 * `restore-legacy`: the rollback path. Rebuilds each selected actor's `response.json` from its manifest's
 * URLs, in the shape the training job wrote, through the atomic writer. An existing response.json is kept
 * unless `force`.
 */
import { existsSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { listActors, refusedActors, selectNamedActors } from './discover.js';
import { InputError, messageOf, type ActorFailure } from '../errors.js';
import { acquireRunLock } from '../lock/run-lock.js';
import { commitFile, removeStaleTemps } from '../manifest/commit.js';
import { readManifest } from '../manifest/read-actor.js';
import { isInside, leadingOutOf, resolveDataRoot, type RootOptions } from './root.js';

export interface RestoreOptions extends RootOptions {
  actors?: string[];
  force?: boolean;
  dryRun?: boolean;
  wait?: boolean;
}

export type RestoreOutcome = 'restored' | 'kept' | 'no-urls' | 'failed';

export interface RestoreReport {
  dryRun: boolean;
  actors: { id: string; name: string; outcome: RestoreOutcome; urls: number; file: string }[];
  errors: ActorFailure[];
}

/** The `response.json` a training job would have written for these URLs. */
function legacyResponse(actorName: string, urls: string[]): string {
  const body = {
    output: {
      output: { actor_id: actorName, s3_image_urls: urls, restored_by: 'actor-sync restore-legacy' },
      status: 'success',
    },
    status: 'COMPLETED',
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}

export async function restoreLegacy(options: RestoreOptions): Promise<RestoreReport> {
  const data = await resolveDataRoot(options);
  const dryRun = options.dryRun ?? false;
  const lock = dryRun ? undefined : await acquireRunLock(data, undefined, { wait: options.wait ?? false });
  try {
    const { actors } = await listActors(data);
    const selected = selectNamedActors(actors, options.actors, data.actorsDir);
    // A training_data another actor reaches too would get this actor's URLs in the other's response.json; a
    // manifest two actor folders share (one id) holds URLs of one of them only: refused as sync refuses them.
    const refused = refusedActors(actors, data, { path: 'nothing restored', id: 'nothing restored' });
    const report: RestoreReport = { dryRun, actors: [], errors: [] };
    for (const actor of selected) {
      const file = join(actor.trainingDir, 'response.json');
      const row = { id: actor.id, name: actor.name, outcome: 'failed' as RestoreOutcome, urls: 0, file };
      report.actors.push(row);
      try {
        const refusal = refused.get(actor.name);
        if (refusal) throw new InputError(refusal.file, refusal.reason);
        const manifest = await readManifest(actor.manifestPath, data.manifestsReal);
        const urls = (manifest?.entries ?? []).flatMap((e) => (e.s3_url ? [e.s3_url] : []));
        row.urls = urls.length;
        if (urls.length === 0) row.outcome = 'no-urls';
        else if (existsSync(file) && !options.force) row.outcome = 'kept';
        else {
          // Never written through a training_data folder that is a symlink out of the actors folder.
          const folder = await realpath(actor.trainingDir).catch(() => undefined);
          if (folder === undefined || !isInside(folder, data.actorsReal)) {
            throw new InputError(
              actor.trainingDir,
              folder === undefined
                ? 'is missing or cannot be resolved; nothing restored'
                : `${leadingOutOf('actors')}; not followed, nothing restored`,
            );
          }
          if (!dryRun) {
            // What a restore killed mid-commit left (its temp file), removed under the lock first.
            await removeStaleTemps(actor.trainingDir, {
              owns: (target) => target === 'response.json',
              olderThanMs: lock?.takenMs,
            });
            await commitFile(file, legacyResponse(actor.name, urls));
          }
          row.outcome = 'restored';
        }
      } catch (error) {
        const failure =
          error instanceof InputError ? { file: error.file, reason: error.reason } : { file, reason: messageOf(error) };
        report.errors.push({ actor: actor.name, ...failure });
      }
    }
    return report;
  } finally {
    await lock?.release();
  }
}
