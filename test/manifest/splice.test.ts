/**
 * Writing the owned fields by splicing (SPEC §3): on a manifest this tool wrote, the same bytes as
 * serializing the merged object; on anything else, every byte outside the owned fields kept.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serializeManifest } from '../../src/manifest/merge.js';
import type { TrainingEntry } from '../../src/manifest/schema.js';
import { spliceManifest, type OwnedFields } from '../../workers/splice.js';
import { STATISTICS } from '../helpers/values.js';

type Json = Record<string, unknown>;

const SAMPLE = join(import.meta.dirname, '../fixtures/actor_maker-sample/data/actor_manifests/0000_manifest.json');
const ENTRIES: TrainingEntry[] = [
  {
    filename: 'a_0.png',
    local_path: 'data/actors/a/training_data/a_0.png',
    size_bytes: 3,
    size_mb: 0,
    md5_hash: 'f'.repeat(32),
    s3_url: null,
    s3_md5: null,
    status: 'local_only',
    mtime_ns: '1760711400123456789',
    inode: 42,
  },
  {
    filename: 'a_1.png',
    local_path: null,
    s3_url: 'https://b.s3.amazonaws.com/a/a_1.png',
    s3_md5: null,
    status: 's3_only',
  },
];
const OWNED: OwnedFields = {
  training_data: ENTRIES,
  training_data_updated: '2026-12-02T00:00:00.000Z',
  statistics: STATISTICS,
};

/** What the writer did before splicing: parse, replace the owned fields (new keys at the end), serialize. */
function mergedAndSerialized(manifest: Json, owned: OwnedFields): string {
  const stats =
    typeof manifest.statistics === 'object' && manifest.statistics !== null ? { ...(manifest.statistics as Json) } : {};
  Object.assign(stats, owned.statistics);
  return serializeManifest({
    ...manifest,
    training_data: owned.training_data,
    training_data_updated: owned.training_data_updated,
    statistics: stats,
  });
}

describe('spliceManifest on a manifest as this tool writes them', () => {
  const sample = JSON.parse(readFileSync(SAMPLE, 'utf8')) as Json;
  const cases: [string, Json][] = [
    ['the studio manifest of actor 0000 (statistics without training keys, no training_data)', sample],
    ['a new manifest', { character_id: '0000', character_name: 'a' }],
    ['an empty object', {}],
    ['an empty statistics object', { character_id: '0000', statistics: {} }],
    [
      'training data before other fields, statistics with a few owned keys among others',
      {
        training_data: [{ filename: 'old.png', status: 'local_only' }],
        metadata: { age: '16', list: [] },
        statistics: { total: 1, training_images_count: 9, nested: { a: [1, { b: 2 }] }, training_data_size_mb: 1 },
        training_data_updated: 'x',
        tail: null,
      },
    ],
  ];
  it.each(cases)('gives the same bytes: %s', (_what, manifest) => {
    expect(spliceManifest(serializeManifest(manifest), OWNED)).toBe(mergedAndSerialized(manifest, OWNED));
  });
});

describe('spliceManifest keeps every byte outside the owned fields', () => {
  const unowned = [
    '"size_mb": 1.0',
    '"name": "Zo\\u00eb fa\\u00e7ade"',
    '"huge": 1e400',
    '"id": 12345678901234567890',
    '"10": "ten", "2": "two"',
    '"escaped\\/slash": "a\\/b"',
  ];

  it('on a Python-written manifest (4-space indent, no final newline), with every owned field present', () => {
    const before = `{\n    "meta": {${unowned.join(', ')}},\n    "statistics": {\n        "total_files": 1.0,\n        "training_images_count": 5\n    },\n    "training_data": [],\n    "training_data_updated": "2025-10-17T16:46:12.097326",\n    "list": [1.0, 2.50]\n}`;
    const after = spliceManifest(before, OWNED);
    for (const text of unowned) expect(after).toContain(text);
    expect(after).toContain('"total_files": 1.0,\n        "training_images_count": 2,');
    expect(after).toContain('"list": [1.0, 2.50]\n}');
    expect(after.endsWith('}')).toBe(true);
    // Owned values in the file's own indentation.
    expect(after).toContain('"training_data": [\n        {\n            "filename": "a_0.png",');
    const parsed = JSON.parse(after) as Json;
    expect(parsed.training_data).toEqual(ENTRIES);
    expect(parsed.statistics).toEqual({ total_files: 1, ...STATISTICS });
    expect(parsed.training_data_updated).toBe(OWNED.training_data_updated);
    // Nothing but the owned values changed: remove them from both and the rest is equal.
    const strip = (text: string) =>
      text
        .replace(/"training_data": \[[\s\S]*?\n {4}\]/, '')
        .replace(/"training_data": \[\]/, '')
        .replace(/"training_[a-z0-9_]+": [^,\n]+,?/g, '');
    expect(strip(after).replace(/\s+/g, ' ')).toBe(strip(before).replace(/\s+/g, ' '));
  });

  it('appends missing owned fields after the last member, in the order of a new manifest', () => {
    const before = '{\n  "a": 1.0,\n  "statistics": {"x": 1.0}\n}\n';
    const after = spliceManifest(before, OWNED);
    expect(after.startsWith('{\n  "a": 1.0,\n  "statistics": {"x": 1.0, "training_images_count": 2, ')).toBe(true);
    expect(Object.keys(JSON.parse(after) as Json)).toEqual([
      'a',
      'statistics',
      'training_data',
      'training_data_updated',
    ]);
    expect(after.endsWith('\n  "training_data_updated": "2026-12-02T00:00:00.000Z"\n}\n')).toBe(true);
  });

  it('writes into a document on one line on one line', () => {
    const after = spliceManifest('{"a":1.0,"training_data":[]}', OWNED);
    expect(after.startsWith('{"a":1.0,"training_data":[{"filename":"a_0.png"')).toBe(true);
    expect(after).not.toContain('\n');
    expect((JSON.parse(after) as Json).statistics).toEqual(STATISTICS);
  });

  it('drops a byte-order mark and keeps keys whose strings hold braces and quotes', () => {
    const before = '\uFEFF{\n  "note": "a } \\" { [",\n  "training_data": []\n}\n';
    const after = spliceManifest(before, OWNED);
    expect(after.startsWith('{\n  "note": "a } \\" { [",\n  "training_data": [\n    {')).toBe(true);
  });

  it('keeps Windows line ends: owned values and added members end their lines as the file does', () => {
    const before =
      '{\r\n  "x": 1.0,\r\n  "training_data": [],\r\n  "statistics": {\r\n    "other": 1.0\r\n  }\r\n}\r\n';
    const after = spliceManifest(before, OWNED);
    expect(after.replace(/\r\n/g, '')).not.toContain('\n');
    expect(after).toContain('"other": 1.0,\r\n    "training_images_count": 2,\r\n');
    expect(after.startsWith('{\r\n  "x": 1.0,\r\n  "training_data": [\r\n    {\r\n')).toBe(true);
  });
});
