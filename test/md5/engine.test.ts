/**
 * `sync --json` and `bench` say which MD5 hashed; where the WebAssembly lanes cannot load (`--jitless`:
 * no WebAssembly at all), node:crypto hashes the same digests and the run says so once on stderr.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { readJson, seedActor0000, tempRoot } from '../helpers/root.js';

const NO_WASM = { NODE_OPTIONS: '--jitless' };
const WARNING =
  /^actor-sync: warning: the WebAssembly MD5 did not load \(.+\); hashing with node:crypto, about 3× slower$/gm;

async function syncSeed(env: NodeJS.ProcessEnv) {
  const root = await tempRoot();
  const seed = await seedActor0000(root);
  const run = await runCli(['sync', '--root', root, '--workers', '2', '--json'], env);
  const manifest = (await readJson(seed.manifest)) as { training_data: { filename: string; md5_hash: string }[] };
  const hashes = Object.fromEntries(manifest.training_data.map((entry) => [entry.filename, entry.md5_hash]));
  return {
    run,
    summary: JSON.parse(run.stdout) as { md5_engine: string; files_hashed: number },
    hashes,
    expected: seed.hashes,
  };
}

describe('the MD5 engine', () => {
  it('is the WebAssembly lanes in sync --json, with nothing said on stderr', async () => {
    const { run, summary, hashes, expected } = await syncSeed({});
    expect(run.code).toBe(0);
    expect(summary.md5_engine).toBe('wasm-lanes');
    expect(run.stderr).not.toMatch(WARNING);
    expect(hashes).toEqual(expected);
  });

  it('is node:crypto where WebAssembly is missing: the same hashes, one warning', async () => {
    const { run, summary, hashes, expected } = await syncSeed(NO_WASM);
    expect(run.code).toBe(0);
    expect(summary).toMatchObject({ md5_engine: 'node:crypto', files_hashed: Object.keys(expected).length });
    expect(run.stderr.match(WARNING)).toHaveLength(1);
    expect(hashes).toEqual(expected);
  });

  it('is in bench --json and bench text, with the warning once', async () => {
    const root = await tempRoot();
    await seedActor0000(root);
    const json = await runCli(['bench', '--root', root, '--workers', '1,2', '--rounds', '1', '--json'], NO_WASM);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ md5_engine: 'node:crypto' });
    expect(json.stderr.match(WARNING)).toHaveLength(1);
    const text = await runCli(['bench', '--root', root, '--workers', '1', '--rounds', '1']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/; MD5: wasm-lanes$/m);
  });
});
