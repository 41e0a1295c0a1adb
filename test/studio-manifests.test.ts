/**
 * The studio's own post-migration manifests (test/fixtures/actor_maker-ecd16a0/, as its repository holds
 * them), synced by the real CLI: the diff touches only the fields this tool owns (SPEC §3). Every other
 * line, a Python `1.0`, a `\u00e9` escape, the missing final newline, stays byte for byte.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { addImages, manifestPath, tempRoot } from './helpers/root.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/actor_maker-ecd16a0/data/actor_manifests');
const ACTORS = [
  ['0000', '0000_european_16_male'],
  ['0001', '0001_european_20_female'],
] as const;

/**
 * The lines outside the owned fields, found by the layout alone (not by the code under test): the
 * `training_data` block, the `training_data_updated` line and statistics' `training_*` lines go; a trailing
 * comma is ignored (a member added after the last one gives that line a comma).
 */
function unownedLines(text: string): string[] {
  const lines: string[] = [];
  let inTrainingData = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('  "training_data": [')) inTrainingData = !line.endsWith(']') && !line.endsWith('],');
    else if (inTrainingData) inTrainingData = !/^ {2}\],?$/.test(line);
    else if (!line.startsWith('  "training_data_updated": ') && !/^ {4}"training_[a-z0-9_]+": /.test(line))
      lines.push(line.replace(/,$/, ''));
  }
  return lines;
}

describe("the studio's own manifests (actor_maker ecd16a0)", () => {
  it('a sync changes only the owned fields: every other line is kept byte for byte', async () => {
    const root = await tempRoot();
    for (const [id, name] of ACTORS) {
      copyFileSync(join(FIXTURES, `${id}_manifest.json`), manifestPath(root, id));
      // Images with other bytes than the studio's: the entries' hashes and statuses must change.
      await addImages(root, name, { [`${name}_0.jpg`]: 2000, [`${name}_12.png`]: 3000, [`${name}_99.png`]: 1000 });
    }
    const result = await runCli(['sync', '--root', root, '--quiet']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });

    for (const [id] of ACTORS) {
      const before = readFileSync(join(FIXTURES, `${id}_manifest.json`), 'utf8');
      const after = readFileSync(manifestPath(root, id), 'utf8');
      expect(after, `${id}: the manifest was rewritten`).not.toBe(before);
      expect(unownedLines(after), `${id}: lines outside the owned fields`).toEqual(unownedLines(before));
      expect(after.endsWith('\n'), `${id}: still no final newline`).toBe(false);
      const entries = (JSON.parse(after) as { training_data: { filename: string; status: string }[] }).training_data;
      expect(entries.find((e) => e.filename.endsWith('_99.png'))?.status, `${id}: a new image is recorded`).toBe(
        'local_only',
      );
    }
    // The studio's Python-written literals survive.
    const after0001 = readFileSync(manifestPath(root, '0001'), 'utf8');
    const before0001 = readFileSync(join(FIXTURES, '0001_manifest.json'), 'utf8');
    for (const literal of [/": \d+\.0,?\n/g, /\\u[0-9a-f]{4}/g])
      expect(after0001.match(literal)).toEqual(before0001.match(literal));
  });
});
