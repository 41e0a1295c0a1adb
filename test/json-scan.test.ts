/**
 * The scan before a parse (src/json-scan.ts): nesting beyond 512 levels and keys named twice once their
 * escapes are read, only where the reader says a key matters; and, through the real CLI, that a key we do
 * not own is judged the same way on every run, whether the sync cache settles the actor or not.
 */
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { MAX_DEPTH, scanJson, type GuardedKey } from '../src/shared/json-scan.js';
import { runCli } from './helpers/cli.js';
import { addImages, manifestPath, tempRoot } from './helpers/root.js';

const every: GuardedKey = () => true;
const none: GuardedKey = () => false;

describe('scanJson', () => {
  it('accepts 512 levels and refuses 513, lists or objects', () => {
    expect(scanJson('['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH), every)).toEqual({ ok: true });
    expect(scanJson('['.repeat(MAX_DEPTH + 1) + ']'.repeat(MAX_DEPTH + 1), every)).toEqual({
      ok: false,
      tooDeep: true,
    });
    expect(scanJson(`${'{"a":'.repeat(MAX_DEPTH + 1)}1${'}'.repeat(MAX_DEPTH + 1)}`, every)).toEqual({
      ok: false,
      tooDeep: true,
    });
  });

  it('refuses 100 000 levels without reading past the bound', () => {
    expect(scanJson('['.repeat(100_000) + ']'.repeat(100_000), none)).toEqual({ ok: false, tooDeep: true });
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const deepText = JSON.stringify({ note: `${'['.repeat(1000)}"\\${'{'.repeat(1000)}` });
    expect(scanJson(deepText, every)).toEqual({ ok: true });
  });

  it('finds a key named twice after its escapes are read, with where it is', () => {
    expect(scanJson('{"output": {"output": {"urls": [1], "url\\u0073": [2]}}}', every)).toEqual({
      ok: false,
      tooDeep: false,
      path: ['output', 'output'],
      key: 'urls',
    });
    expect(scanJson('{"a": [{"x": 1}, {"x": 1, "\\u0078": 2}]}', every)).toEqual({
      ok: false,
      tooDeep: false,
      path: ['a', 1],
      key: 'x',
    });
  });

  it('tells equal keys in sibling objects apart, and a value equal to a key', () => {
    expect(scanJson('{"a": {"x": "x"}, "b": {"x": 1}, "x": [{"x": 1}, {"x": 2}]}', every)).toEqual({ ok: true });
  });

  it('ignores a key named twice that the reader does not guard', () => {
    const text = '{"status": 1, "status": 2, "output": {"id": 1, "id": 2}}';
    expect(scanJson(text, (path, key) => path.length === 0 && key === 'output')).toEqual({ ok: true });
    expect(scanJson(text, (path, key) => path.length === 0 && key === 'status')).toMatchObject({
      ok: false,
      key: 'status',
    });
  });

  it('passes over text that is not JSON (JSON.parse names the problem)', () => {
    expect(scanJson('{"a": "unterminated', every)).toEqual({ ok: true });
    expect(scanJson(']]]{', every)).toEqual({ ok: true });
  });
});

describe('a manifest field we do not own holding a key named training_data', () => {
  it('passes sync, a second (cached) sync and check alike', async () => {
    const root = await tempRoot();
    await addImages(root, '0005_x', { '0005_x_0.png': 1000 });
    const manifest = manifestPath(root, '0005');
    await writeFile(
      manifest,
      '{\n  "character_id": "0005",\n  "lora": {"training_data": "x"},\n  "training_data": []\n}\n',
    );
    for (const args of [['sync'], ['sync'], ['check'], ['sync', '--verify']]) {
      const result = await runCli([...args, '--root', root, '--quiet']);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
    }
  });
});
