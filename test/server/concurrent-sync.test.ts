/**
 * Readers never see a torn manifest (SPEC §3 invariant 1, from the API's side): the real CLI's `sync`
 * rewrites actor 0000's manifest again and again while requests keep coming; every answer is a 200 with
 * a valid body and the same consistent counts, and the answers do see the manifest change under them.
 */
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ActorListSchema, TrainingDataSchema } from '../../src/server/schema.js';
import { runCli } from '../helpers/cli.js';
import { SEED_NAME, seedActor0000, tempRoot, trainingDir } from '../helpers/root.js';
import { serve, trainingDataPath } from '../helpers/server.js';

const SYNC_RUNS = 8;
const READERS = 4;

describe('requests while sync rewrites manifests', () => {
  it(`${SYNC_RUNS} sync runs, each rewriting the manifest, under ${READERS} readers: every answer whole and consistent`, async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const server = await serve(root);
    const first = await runCli(['sync', '--root', root, '--workers', '1', '--quiet']);
    expect(first.code, first.stderr).toBe(0);

    let syncing = true;
    const updates = new Set<string | null>();
    let answers = 0;
    const problems: string[] = [];

    const reader = async (n: number) => {
      while (syncing) {
        const path = n === 0 && answers % 5 === 0 ? '/api/actors' : trainingDataPath(['0', '0000', SEED_NAME][n % 3]!);
        const response = await fetch(server.url + path);
        const text = await response.text();
        answers += 1;
        if (response.status !== 200) {
          problems.push(`${path}: ${response.status} ${text}`);
          continue;
        }
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          problems.push(`${path}: not JSON: ${text.slice(0, 200)}`);
          continue;
        }
        if (path === '/api/actors') {
          const row = ActorListSchema.parse(body)[0]!;
          expect(row).toMatchObject({
            total_count: 17,
            synced_count: 12,
            local_only_count: 5,
            untracked_count: 0,
            error: null,
          });
          continue;
        }
        const data = TrainingDataSchema.parse(body);
        updates.add(data.manifest_updated);
        const byStatus = (status: string) => data.training_images.filter((i) => i.status === status).length;
        expect(data.training_images).toHaveLength(data.total_count);
        expect(data).toMatchObject({
          total_count: 17,
          synced_count: byStatus('synced'),
          local_only_count: byStatus('local_only'),
          untracked_count: data.training_images.filter((i) => !i.tracked).length,
        });
        expect(data).toMatchObject({
          synced_count: 12,
          local_only_count: 5,
          s3_only_count: 0,
          out_of_sync_count: 0,
          missing_count: 0,
          untracked_count: 0,
        });
      }
    };

    const writer = async () => {
      try {
        for (let run = 1; run <= SYNC_RUNS; run += 1) {
          // A new mtime on a local_only image: its status stays, but the manifest must be rewritten.
          const when = new Date(Date.UTC(2025, 0, 1, 0, 0, run));
          await utimes(join(trainingDir(root, SEED_NAME), `${SEED_NAME}_0.png`), when, when);
          const result = await runCli(['sync', '--root', root, '--workers', '1', '--json']);
          expect(result.code, result.stderr).toBe(0);
          expect(JSON.parse(result.stdout).manifests.written, `run ${run} rewrote the manifest`).toBe(1);
        }
      } finally {
        syncing = false;
      }
    };

    // Settled, not raced: a failing reader must not leave the writer running past the test.
    const outcomes = await Promise.allSettled([writer(), ...Array.from({ length: READERS }, (_, n) => reader(n))]);
    for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
    expect(problems).toEqual([]);
    expect(answers).toBeGreaterThan(SYNC_RUNS);
    expect(updates.size, 'the readers saw the manifest rewritten while they read').toBeGreaterThan(1);
  });
});
