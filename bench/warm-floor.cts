/**
 * The least a warm `sync` can take in a fresh Node process, for `npm run bench`: for each actor, the reads
 * that sync-cache.ts's `settledReport` needs before it may call the actor unchanged (the folder's lstat and
 * listing, the manifest's and prompt_metadata.json's bytes with their MD5, the response.json lookup, one
 * lstat per image, an MD5 of the stat tokens), and nothing else: no module but Node's own, no lock, no
 * cache file, no output. CommonJS, which starts faster than an ES module.
 *
 *   node dist/bench/warm-floor.cjs ROOT
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2];
if (!root) {
  process.stderr.write('usage: node dist/bench/warm-floor.cjs ROOT\n');
  process.exit(2);
}
const actorsDir = join(root, 'data/actors');
const manifestsDir = join(root, 'data/actor_manifests');
const IMAGE = /\.(jpe?g|png|gif|webp|avif|bmp)$/i;

/** The MD5 of a file's bytes; null when there is no such file (as the cache reads it). */
function md5OfFile(path: string): string | null {
  try {
    return createHash('md5').update(readFileSync(path)).digest('hex');
  } catch {
    return null;
  }
}

let images = 0;
for (const name of readdirSync(actorsDir)) {
  const dir = join(actorsDir, name, 'training_data');
  if (!lstatSync(dir, { throwIfNoEntry: false })) continue;
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((d) => !d.name.startsWith('.') && IMAGE.test(d.name) && d.isFile())
    .map((d) => d.name);
  const hash = createHash('md5');
  md5OfFile(join(manifestsDir, `${name.slice(0, name.indexOf('_'))}_manifest.json`));
  md5OfFile(join(dir, 'prompt_metadata.json'));
  lstatSync(join(dir, 'response.json'), { throwIfNoEntry: false });
  for (const filename of names) {
    const stats = lstatSync(join(dir, filename), { bigint: true });
    hash.update(`${filename}\0${stats.size}\0${stats.mtimeNs}\0${stats.ino}\n`);
    images += 1;
  }
  hash.digest('hex');
}
if (images === 0) {
  process.stderr.write(`warm-floor: no images under ${actorsDir}\n`);
  process.exit(1);
}
