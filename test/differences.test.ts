import { describe, expect, it } from 'vitest';
import { entryDifferences, statisticsDifferences } from '../workers/differences.js';
import { OWNED_STATISTICS, type TrainingEntry, type TrainingStatistics } from '../src/manifest/schema.js';
import { fakeMd5 as md5 } from './helpers/values.js';

const ACTOR = '0000_european_16_male';
const MANIFEST = 'data/actor_manifests/0000_manifest.json';
const URL = `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${ACTOR}`;

function entry(suffix: string, fields: Partial<TrainingEntry> = {}): TrainingEntry {
  const filename = `${ACTOR}_${suffix}`;
  return {
    filename,
    local_path: `data/actors/${ACTOR}/training_data/${filename}`,
    size_bytes: 1000,
    size_mb: 0,
    modified_timestamp: 1760711400.123,
    modified_date: '2025-10-17T14:30:00.123Z',
    md5_hash: md5(1),
    s3_url: `${URL}/${filename}`,
    s3_md5: md5(1),
    status: 'synced',
    mtime_ns: '1760711400123456789',
    inode: 42,
    ...fields,
  };
}

const STATISTICS: TrainingStatistics = {
  training_images_count: 17,
  training_synced_count: 12,
  training_local_only_count: 5,
  training_s3_only_count: 0,
  training_out_of_sync_count: 0,
  training_missing_count: 0,
  training_data_size_bytes: 5_570_000,
  training_data_size_mb: 5.31,
};

describe('entryDifferences', () => {
  it('finds nothing when the entries are the same', () => {
    const entries = [entry('0.png'), entry('1.png')];
    expect(entryDifferences(ACTOR, entries, structuredClone(entries))).toEqual([]);
  });

  it('finds nothing for an actor with no entries before or after', () => {
    expect(entryDifferences(ACTOR, [], [])).toEqual([]);
  });

  it('names a new entry with the status it would get', () => {
    expect(entryDifferences(ACTOR, [], [entry('0.png', { s3_url: null, s3_md5: null, status: 'local_only' })])).toEqual(
      [{ actor: ACTOR, file: `${ACTOR}_0.png`, what: 'not in the manifest yet (would be local_only)' }],
    );
  });

  it('names a removed entry as dropped', () => {
    expect(entryDifferences(ACTOR, [entry('0.png'), entry('1.png')], [entry('1.png')])).toEqual([
      {
        actor: ACTOR,
        file: `${ACTOR}_0.png`,
        what: 'in the manifest but neither on disk nor in S3 (would be dropped)',
      },
    ]);
  });

  it('names each changed field of an entry with its old and new value', () => {
    const before = [entry('4.png')];
    const after = [entry('4.png', { md5_hash: md5(2), status: 'out_of_sync', size_bytes: 2000 })];
    expect(entryDifferences(ACTOR, before, after)).toEqual([
      { actor: ACTOR, file: `${ACTOR}_4.png`, what: 'size_bytes: 1000 → 2000' },
      { actor: ACTOR, file: `${ACTOR}_4.png`, what: `md5_hash: "${md5(1)}" → "${md5(2)}"` },
      { actor: ACTOR, file: `${ACTOR}_4.png`, what: 'status: "synced" → "out_of_sync"' },
    ]);
  });

  it('shows a missing or null value as none', () => {
    const before = [entry('4.jpg', { s3_url: null, s3_md5: null, status: 'local_only' })];
    const after = [entry('4.jpg', { status: 'synced', duplicate_of: `${ACTOR}_4.png` })];
    expect(entryDifferences(ACTOR, before, after).map((d) => d.what)).toEqual([
      `s3_url: none → "${URL}/${ACTOR}_4.jpg"`,
      `s3_md5: none → "${md5(1)}"`,
      'status: "local_only" → "synced"',
      `duplicate_of: none → "${ACTOR}_4.png"`,
    ]);
  });

  it('reports an s3_exists: false finding and its removal', () => {
    const present = entry('4.png');
    const absent = entry('4.png', { s3_exists: false, status: 'local_only' });
    expect(entryDifferences(ACTOR, [present], [absent]).map((d) => d.what)).toEqual([
      's3_exists: none → false',
      'status: "synced" → "local_only"',
    ]);
    expect(entryDifferences(ACTOR, [absent], [present]).map((d) => d.what)).toEqual([
      's3_exists: false → none',
      'status: "local_only" → "synced"',
    ]);
  });

  it('treats a missing field and a null one as the same', () => {
    const before = [
      {
        filename: `${ACTOR}_0.png`,
        local_path: `data/actors/${ACTOR}/training_data/${ACTOR}_0.png`,
        md5_hash: md5(1),
        status: 'local_only' as const,
      },
    ];
    const after = [entry('0.png', { s3_url: null, s3_md5: null, status: 'local_only', size_bytes: null })];
    // No compared field differs; the entry is still rewritten (it gains the stat fields), said once.
    expect(entryDifferences(ACTOR, before, after).map((d) => d.what)).toEqual([
      `modified_date: none → ${JSON.stringify(after[0]!.modified_date)} (same content)`,
    ]);
  });

  // A fresh checkout gives every file a new mtime and inode: sync records them, so check reports them,
  // once, as a change of stat with the same content.
  it('reports a change of mtime or inode alone as one stat change with the same content', () => {
    const touched = [
      entry('0.png', {
        modified_timestamp: 1,
        modified_date: '1970-01-01T00:00:01.000Z',
        mtime_ns: '1000000000',
        inode: 7,
      }),
    ];
    expect(entryDifferences(ACTOR, [entry('0.png')], touched).map((d) => d.what)).toEqual([
      `modified_date: ${JSON.stringify(entry('0.png').modified_date)} → "1970-01-01T00:00:01.000Z" (same content)`,
    ]);
    expect(entryDifferences(ACTOR, [entry('0.png')], [entry('0.png', { inode: 7 })]).map((d) => d.what)).toEqual([
      `inode: ${JSON.stringify(entry('0.png').inode ?? null) === 'null' ? 'none' : entry('0.png').inode} → 7 (same content)`,
    ]);
  });

  it('lists new and changed entries in the order of the new entries, then the removed ones', () => {
    const before = [entry('1.png'), entry('2.png'), entry('3.png')];
    const after = [entry('0.png'), entry('2.png', { status: 'out_of_sync', s3_md5: md5(5) }), entry('10.png')];
    expect(entryDifferences(ACTOR, before, after)).toEqual([
      { actor: ACTOR, file: `${ACTOR}_0.png`, what: 'not in the manifest yet (would be synced)' },
      { actor: ACTOR, file: `${ACTOR}_2.png`, what: `s3_md5: "${md5(1)}" → "${md5(5)}"` },
      { actor: ACTOR, file: `${ACTOR}_2.png`, what: 'status: "synced" → "out_of_sync"' },
      { actor: ACTOR, file: `${ACTOR}_10.png`, what: 'not in the manifest yet (would be synced)' },
      {
        actor: ACTOR,
        file: `${ACTOR}_1.png`,
        what: 'in the manifest but neither on disk nor in S3 (would be dropped)',
      },
      {
        actor: ACTOR,
        file: `${ACTOR}_3.png`,
        what: 'in the manifest but neither on disk nor in S3 (would be dropped)',
      },
    ]);
  });
});

describe('statisticsDifferences', () => {
  it('finds nothing when every owned count is the same, whatever else statistics holds', () => {
    expect(statisticsDifferences(ACTOR, MANIFEST, { total_files: 279, ...STATISTICS }, STATISTICS)).toEqual([]);
  });

  it('names each changed count with its old and new value, against the manifest file', () => {
    const before = { ...STATISTICS, training_synced_count: 11, training_out_of_sync_count: 1 };
    expect(statisticsDifferences(ACTOR, MANIFEST, before, STATISTICS)).toEqual([
      { actor: ACTOR, file: MANIFEST, what: 'statistics.training_synced_count: 11 → 12' },
      { actor: ACTOR, file: MANIFEST, what: 'statistics.training_out_of_sync_count: 1 → 0' },
    ]);
  });

  it('names every owned count as new when the manifest has no statistics', () => {
    for (const before of [undefined, null, 'not an object']) {
      const differences = statisticsDifferences(ACTOR, MANIFEST, before, STATISTICS);
      expect(differences.map((d) => d.what)).toEqual(
        OWNED_STATISTICS.map((key) => `statistics.${key}: none → ${STATISTICS[key]}`),
      );
    }
  });

  it('names the sizes in bytes and MB', () => {
    const before = { ...STATISTICS, training_data_size_bytes: 5_000_000, training_data_size_mb: 4.77 };
    expect(statisticsDifferences(ACTOR, MANIFEST, before, STATISTICS).map((d) => d.what)).toEqual([
      'statistics.training_data_size_bytes: 5000000 → 5570000',
      'statistics.training_data_size_mb: 4.77 → 5.31',
    ]);
  });
});
