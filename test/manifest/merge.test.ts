import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { newManifest, ownedFieldsDiffer, sameEntries, sameJson, serializeManifest } from '../../src/manifest/merge.js';
import { spliceManifest } from '../../workers/splice.js';
import {
  ManifestSchema,
  OWNED_STATISTICS,
  type TrainingEntry,
  type TrainingStatistics,
} from '../../src/manifest/schema.js';
import { fakeMd5 as md5, STATISTICS } from '../helpers/values.js';

const SAMPLE = join(import.meta.dirname, '../fixtures/actor_maker-sample/data/actor_manifests/0000_manifest.json');
const ACTOR = '0000_european_16_male';
const URL = `https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/training_data/${ACTOR}`;
const UPDATED = '2025-10-17T16:30:00.000Z';

type Json = Record<string, unknown>;

/** The studio's real manifest for actor 0000: metadata, base and scene images, statistics… and no training_data. */
function sample(): Json {
  return JSON.parse(readFileSync(SAMPLE, 'utf8')) as Json;
}

const ENTRIES: TrainingEntry[] = [
  {
    filename: `${ACTOR}_0.png`,
    local_path: `data/actors/${ACTOR}/training_data/${ACTOR}_0.png`,
    size_bytes: 328_059,
    size_mb: 0.31,
    modified_timestamp: 1760711400.123,
    modified_date: '2025-10-17T14:30:00.123Z',
    md5_hash: md5(1),
    s3_url: null,
    s3_md5: null,
    status: 'local_only',
    mtime_ns: '1760711400123456789',
    inode: 42,
  },
  {
    filename: `${ACTOR}_4.png`,
    local_path: `data/actors/${ACTOR}/training_data/${ACTOR}_4.png`,
    size_bytes: 5_241_941,
    size_mb: 5,
    modified_timestamp: 1760711400.123,
    modified_date: '2025-10-17T14:30:00.123Z',
    md5_hash: md5(2),
    s3_url: `${URL}/${ACTOR}_4.png`,
    s3_md5: md5(2),
    status: 'synced',
    mtime_ns: '1760711400123456789',
    inode: 43,
  },
];

/** The manifest as a run writes it over `manifest` (as this tool wrote it before), read back. */
function withTrainingData(
  manifest: Json,
  entries: TrainingEntry[],
  statistics: TrainingStatistics,
  updated: string,
): Json {
  return JSON.parse(
    spliceManifest(serializeManifest(manifest), { training_data: entries, training_data_updated: updated, statistics }),
  ) as Json;
}

/** A fresh deep copy, so a test cannot reach the shared constants through the merged manifest. */
function copy<T>(value: T): T {
  return structuredClone(value);
}

describe('withTrainingData on the studio manifest of actor 0000', () => {
  const original = sample();
  const merged = withTrainingData(sample(), copy(ENTRIES), copy(STATISTICS), UPDATED);

  it('keeps every key it does not own, deep-equal to the original', () => {
    for (const key of Object.keys(original)) {
      if (key === 'statistics') continue;
      expect(merged[key], key).toEqual(original[key]);
    }
  });

  it("keeps the original's key order and adds training_data, training_data_updated at the end", () => {
    expect(Object.keys(original)).not.toContain('training_data');
    expect(Object.keys(merged)).toEqual([...Object.keys(original), 'training_data', 'training_data_updated']);
  });

  it('keeps the key order inside the objects it does not own', () => {
    const metadata = original.metadata as Json;
    expect(Object.keys(merged.metadata as Json)).toEqual(Object.keys(metadata));
    const base = original.base_images as Json[];
    expect((merged.base_images as Json[]).map((image) => Object.keys(image))).toEqual(
      base.map((image) => Object.keys(image)),
    );
  });

  it('writes training_data and training_data_updated as given', () => {
    expect(merged.training_data).toEqual(ENTRIES);
    expect(merged.training_data_updated).toBe(UPDATED);
  });

  it("keeps statistics' own keys (total_files…), in order, and adds the training_* keys", () => {
    const before = original.statistics as Json;
    const after = merged.statistics as Json;
    expect(before).toHaveProperty('total_files');
    expect(Object.keys(after)).toEqual([...Object.keys(before), ...OWNED_STATISTICS]);
    expect(after).toEqual({ ...before, ...STATISTICS });
  });

  it('leaves the manifest it was given untouched', () => {
    const input = sample();
    withTrainingData(input, copy(ENTRIES), copy(STATISTICS), UPDATED);
    expect(input).toEqual(original);
    expect(Object.keys(input)).toEqual(Object.keys(original));
  });

  it('is a manifest the schema accepts', () => {
    expect(ManifestSchema.safeParse(merged).success).toBe(true);
  });

  it('round-trips through serializeManifest without losing a field', () => {
    expect(JSON.parse(serializeManifest(merged))).toEqual(merged);
  });
});

describe('withTrainingData on a manifest that already has training data', () => {
  const before: Json = {
    character_id: '0000',
    training_data: [{ filename: 'old.jpg', status: 'local_only' }],
    training_data_updated: '2024-01-01T00:00:00.000Z',
    metadata: { age: '16' },
    statistics: { training_images_count: 1, total_files: 279, training_data_size_mb: 0.1, total_size_mb: 370.22 },
    status: 'success',
  };

  it('replaces training_data and training_data_updated in place', () => {
    const merged = withTrainingData(copy(before), copy(ENTRIES), copy(STATISTICS), UPDATED);
    expect(Object.keys(merged)).toEqual([
      'character_id',
      'training_data',
      'training_data_updated',
      'metadata',
      'statistics',
      'status',
    ]);
    expect(merged.training_data).toEqual(ENTRIES);
    expect(merged.training_data_updated).toBe(UPDATED);
    expect(merged.metadata).toEqual({ age: '16' });
    expect(merged.status).toBe('success');
  });

  it('updates owned statistics where they are and appends the others, keeping the rest', () => {
    const merged = withTrainingData(copy(before), copy(ENTRIES), copy(STATISTICS), UPDATED);
    const stats = merged.statistics as Json;
    expect(Object.keys(stats).slice(0, 4)).toEqual([
      'training_images_count',
      'total_files',
      'training_data_size_mb',
      'total_size_mb',
    ]);
    expect(stats).toEqual({ total_files: 279, total_size_mb: 370.22, ...STATISTICS });
  });
});

describe('withTrainingData on a manifest without statistics', () => {
  it('adds statistics holding the owned keys', () => {
    const merged = withTrainingData(newManifest('0000', ACTOR), copy(ENTRIES), copy(STATISTICS), UPDATED);
    expect(Object.keys(merged)).toEqual([
      'character_id',
      'character_name',
      'training_data',
      'training_data_updated',
      'statistics',
    ]);
    expect(merged.statistics).toEqual(STATISTICS);
  });
});

describe('ownedFieldsDiffer', () => {
  const written = withTrainingData(sample(), copy(ENTRIES), copy(STATISTICS), UPDATED);
  /** The manifest as a later run reads it back from disk. */
  const onDisk = JSON.parse(serializeManifest(written)) as Json;

  it('is false when the same entries and statistics are merged again', () => {
    expect(ownedFieldsDiffer(onDisk, copy(ENTRIES), copy(STATISTICS))).toBe(false);
  });

  it('ignores training_data_updated', () => {
    const later = { ...onDisk, training_data_updated: '2030-01-01T00:00:00.000Z' };
    expect(ownedFieldsDiffer(later, copy(ENTRIES), copy(STATISTICS))).toBe(false);
  });

  it('ignores fields it does not own, in statistics or elsewhere', () => {
    const edited = { ...onDisk, status: 'edited', statistics: { ...(onDisk.statistics as Json), total_files: 1 } };
    expect(ownedFieldsDiffer(edited, copy(ENTRIES), copy(STATISTICS))).toBe(false);
  });

  it('is true for a manifest without training data', () => {
    expect(ownedFieldsDiffer(sample(), copy(ENTRIES), copy(STATISTICS))).toBe(true);
    expect(ownedFieldsDiffer(sample(), [], copy(STATISTICS))).toBe(true);
  });

  it.each([
    ['an entry field', (entries: TrainingEntry[]) => void (entries[1]!.status = 'out_of_sync')],
    ['an MD5', (entries: TrainingEntry[]) => void (entries[0]!.md5_hash = md5(9))],
    ['the stat token', (entries: TrainingEntry[]) => void (entries[0]!.mtime_ns = '1760711400123456790')],
    ['an added field', (entries: TrainingEntry[]) => void (entries[0]!.duplicate_of = `${ACTOR}_4.png`)],
    ['a removed entry', (entries: TrainingEntry[]) => void entries.pop()],
    [
      'an added entry',
      (entries: TrainingEntry[]) =>
        void entries.push({ filename: `${ACTOR}_9.png`, s3_url: `${URL}/${ACTOR}_9.png`, status: 's3_only' }),
    ],
    ['the order of the entries', (entries: TrainingEntry[]) => void entries.reverse()],
  ])('is true on a change of %s', (_what, change) => {
    const entries = copy(ENTRIES);
    change(entries);
    expect(ownedFieldsDiffer(onDisk, entries, copy(STATISTICS))).toBe(true);
  });

  it.each(OWNED_STATISTICS.map((key) => [key]))('is true when statistics.%s changes', (key) => {
    expect(ownedFieldsDiffer(onDisk, copy(ENTRIES), { ...STATISTICS, [key]: STATISTICS[key] + 1 })).toBe(true);
  });

  it('is true when an owned statistic is missing from the manifest', () => {
    const stats = { ...(onDisk.statistics as Json) };
    delete stats.training_missing_count;
    expect(ownedFieldsDiffer({ ...onDisk, statistics: stats }, copy(ENTRIES), copy(STATISTICS))).toBe(true);
  });
});

describe('serializeManifest', () => {
  it('writes 2-space indented JSON with a final newline', () => {
    const text = serializeManifest({
      character_id: '0000',
      statistics: { training_images_count: 17 },
      training_data: [],
    });
    expect(text).toBe(
      '{\n  "character_id": "0000",\n  "statistics": {\n    "training_images_count": 17\n  },\n  "training_data": []\n}\n',
    );
  });

  it('ends with exactly one newline', () => {
    const text = serializeManifest(sample());
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.endsWith('\n\n')).toBe(false);
  });

  it('writes non-ASCII names as they are', () => {
    expect(serializeManifest({ character_name: 'Zoë façade' })).toBe('{\n  "character_name": "Zoë façade"\n}\n');
  });
});

describe('newManifest', () => {
  it('holds the character id and name, and nothing else', () => {
    expect(newManifest('0000', ACTOR)).toEqual({ character_id: '0000', character_name: ACTOR });
    expect(Object.keys(newManifest('0000', ACTOR))).toEqual(['character_id', 'character_name']);
  });

  it('is a fresh object each time', () => {
    expect(newManifest('0000', ACTOR)).not.toBe(newManifest('0000', ACTOR));
  });
});

describe('sameJson and sameEntries', () => {
  it('are blind to key order and to keys holding undefined, not to values, types or extra keys', () => {
    expect(sameJson({ a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1, gone: undefined }, { a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: null })).toBe(false);
    expect(sameJson({ a: 1 }, { a: '1' })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson({ 0: 'x' }, ['x'])).toBe(false);
    expect(sameJson(null, {})).toBe(false);
    // A key named __proto__ (JSON.parse makes it an own key) is compared like any other.
    expect(sameJson(JSON.parse('{"__proto__": {}}'), { other: 1 })).toBe(false);
    expect(sameJson(JSON.parse('{"__proto__": {"x": 1}}'), JSON.parse('{"__proto__": {"x": 1}}'))).toBe(true);
  });

  it('entries may differ in s3_checked_at only', () => {
    const entry = { filename: 'a.png', status: 'synced', s3_checked_at: '2026-01-01T00:00:00Z' };
    expect(sameEntries([entry], [{ ...entry, s3_checked_at: '2026-02-02T00:00:00Z' }])).toBe(true);
    expect(sameEntries([entry], [{ filename: 'a.png', status: 'synced' }])).toBe(true);
    expect(sameEntries([entry], [{ ...entry, status: 'local_only' }])).toBe(false);
    expect(sameEntries([entry], [entry, entry])).toBe(false);
    expect(
      sameEntries([{ ...entry, nested: { s3_checked_at: 1 } }], [{ ...entry, nested: { s3_checked_at: 2 } }]),
    ).toBe(false);
    expect(sameEntries(undefined, [])).toBe(false);
    expect(sameEntries(undefined, null)).toBe(true);
  });
});
