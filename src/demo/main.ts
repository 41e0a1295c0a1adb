/**
 * `npm start`: builds a demo data root in a temp folder (289 actors, a third with response.json, and the
 * seed's actor 0000 exactly), runs `sync` on it through the real CLI, and prints actor 0000's table.
 */
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../cli/program.js';
import { ManifestSchema } from '../manifest/schema.js';
import { generateDataRoot } from './generate.js';

const root = mkdtempSync(join(tmpdir(), 'actor-sync-demo-'));
const generated = await generateDataRoot(root);
const legacy = generated.actors.filter((a) => a.legacyUrls.length > 0).length;
process.stdout.write(`demo data root: ${root}\n  ${generated.actors.length} actors, ${generated.totalImages} images (${(generated.totalBytes / 1048576).toFixed(1)} MB), ${legacy} with response.json\n\n$ actor-sync sync --root ${root}\n`);

const code = await runCli(['sync', '--root', root], { stdout: process.stdout, stderr: process.stderr });

const manifest = ManifestSchema.parse(JSON.parse(await readFile(join(root, 'data', 'actor_manifests', '0000_manifest.json'), 'utf8')));
const rows = (manifest.training_data ?? []).map((e) => [e.filename, e.status ?? '', e.md5_hash?.slice(0, 8) ?? '-', e.s3_url ? 'yes' : '-', e.duplicate_of ?? '']);
const header = ['filename', 'status', 'md5', 's3_url', 'duplicate_of'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
const stats = manifest.statistics ?? {};
process.stdout.write(
  `\nactor 0000 (${manifest.character_name}): ${stats.training_images_count} images, ${stats.training_synced_count} synced, ${stats.training_local_only_count} local_only\n` +
    `${[header, ...rows].map(line).join('\n')}\n\n` +
    `Try: node dist/src/cli/main.js status --root ${root}\n     node dist/src/cli/main.js check --root ${root}\n`,
);
process.exitCode = code;
