/**
 * `npm run bench`: the sync benchmark (run.ts), then the remote case (remote.ts), each given the options it
 * knows from this command line (`--scale`, `--scales`, `--cache` go to the first; `--rounds` to both).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const options = {
  scale: { type: 'string' },
  scales: { type: 'string' },
  rounds: { type: 'string' },
  cache: { type: 'string' },
} as const;
let values: ReturnType<typeof parseArgs<{ options: typeof options }>>['values'];
try {
  ({ values } = parseArgs({ options }));
} catch (error) {
  process.stderr.write(
    `bench: ${(error as Error).message}\nusage: npm run bench -- [--scale N | --scales 1,10] [--rounds N] [--cache DIR]\n`,
  );
  process.exit(2);
}
const flag = (name: keyof typeof values) => (values[name] === undefined ? [] : [`--${name}`, values[name]!]);

for (const [script, args] of [
  ['run.js', [...flag('scale'), ...flag('scales'), ...flag('rounds'), ...flag('cache')]],
  ['remote.js', flag('rounds')],
] as const) {
  const { status } = spawnSync(process.execPath, [join(here, script), ...args], { stdio: 'inherit' });
  if (status !== 0) process.exit(status ?? 1);
}
