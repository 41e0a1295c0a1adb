/**
 * `npm start`: builds a demo data root in a temp folder (289 actors, a third with response.json, and the
 * seed's actor 0000 exactly), runs `sync` on it through the real CLI and prints actor 0000's table; then
 * starts an in-process S3-compatible server (s3rver, loopback, port 0) holding some of the images — one
 * with other bytes — and runs `sync --remote`, which shows every status.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdtempSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3RVER_CREDENTIALS, startLocalS3 } from './s3rver.js';
import { runCli } from '../src/cli/program.js';
import { ManifestSchema } from '../src/manifest/schema.js';
import { createS3 } from '../src/s3/client.js';
import { parseS3Url } from '../src/shared/s3-url.js';
import { generateDataRoot, type GeneratedRoot } from './generate.js';

const out = (text: string) => process.stdout.write(text);
const context = { stdout: process.stdout, stderr: process.stderr };

const root = mkdtempSync(join(tmpdir(), 'actor-sync-demo-'));
const generated = await generateDataRoot(root);
const legacy = generated.actors.filter((a) => a.legacyUrls.length > 0).length;
out(
  `demo data root: ${root}\n  ${generated.actors.length} actors, ${generated.totalImages} images (${(generated.totalBytes / 1048576).toFixed(1)} MB), ${legacy} with response.json\n`,
);

out(`\n$ actor-sync sync --root ${root}\n`);
let code = await runCli(['sync', '--root', root], context);
await printActor0000();

// S3: a real S3-compatible server on loopback, holding actor 0000's 12 uploaded images (one of them with
// other bytes) and half the legacy actors' URLs but every tenth.
process.noDeprecation = true; // s3rver uses a deprecated Node API; the demo's output stays clean
const server = await startLocalS3(['story-boards-assets']);
const { endpoint } = server;
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  AWS_REGION: 'us-west-1',
});
const uploaded = await seedS3(generated, endpoint);
out(
  `\nS3-compatible server (s3rver) at ${endpoint}: ${uploaded} objects; ${generated.actors[0]!.name}_6.png there has other bytes\n`,
);

out(`\n$ actor-sync sync --root ${root} --remote --endpoint ${endpoint} --force-path-style\n`);
code = Math.max(
  code,
  await runCli(['sync', '--root', root, '--remote', '--endpoint', endpoint, '--force-path-style'], context),
);
await printActor0000();
await server.close();
out(
  `\nTry: node dist/src/cli/main.js status --root ${root}\n     node dist/src/cli/main.js check --root ${root}\n     node dist/src/cli/main.js serve --root ${root}\n`,
);
process.exitCode = code;

async function printActor0000(): Promise<void> {
  const manifest = ManifestSchema.parse(
    JSON.parse(await readFile(join(root, 'data', 'actor_manifests', '0000_manifest.json'), 'utf8')),
  );
  const rows = (manifest.training_data ?? []).map((e) => [
    e.filename,
    e.status ?? '',
    e.md5_hash?.slice(0, 8) ?? '-',
    e.s3_md5?.slice(0, 8) ?? '-',
    e.duplicate_of ?? '',
  ]);
  const header = ['filename', 'status', 'md5', 's3_md5', 'duplicate_of'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const s = manifest.statistics ?? {};
  out(
    `\nactor 0000 (${manifest.character_name}): ${s.training_images_count} images — ${s.training_synced_count} synced, ${s.training_local_only_count} local_only, ` +
      `${s.training_s3_only_count} s3_only, ${s.training_out_of_sync_count} out_of_sync, ${s.training_missing_count} missing\n${[header, ...rows].map(line).join('\n')}\n`,
  );
}

async function seedS3(data: GeneratedRoot, endpoint: string): Promise<number> {
  const s3 = createS3({ endpoint, forcePathStyle: true });
  let count = 0;
  for (const [n, actor] of data.actors.entries()) {
    if (n % 12 === 6 || n % 12 === 9) continue; // legacy actors are every third; the ones with an s3_only image stay
    for (const [i, url] of actor.legacyUrls.entries()) {
      if (actor.id !== '0000' && i % 10 === 9) continue; // left out: local_only (or missing, for a URL with no local file)
      const { bucket, key, filename } = parseS3Url(url);
      const local = join(data.root, 'data', 'actors', actor.name, 'training_data', filename);
      let body: Buffer;
      try {
        body = filename === `${data.actors[0]!.name}_6.png` ? Buffer.from('other bytes') : readFileSync(local);
      } catch {
        body = Buffer.from(`only in S3: ${filename}`); // the generator's s3_only images
      }
      await s3.run(() => s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body })));
      count += 1;
    }
  }
  s3.close();
  return count;
}
