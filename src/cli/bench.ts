/** `actor-sync bench`: hash throughput on the user's own data root at each worker count. Writes nothing. */
import { availableParallelism } from 'node:os';
import { Command } from 'commander';
import { positiveInteger, threadCount, type CommandContext } from './common.js';

export interface BenchFlags {
  root?: string;
  actorsDir?: string;
  actor: string[];
  workers: number[];
  rounds: number;
  json?: boolean;
}

export async function benchCommand(flags: BenchFlags, context: CommandContext): Promise<number> {
  const [{ resolveDataRoot }, { measureThroughput, BenchSummarySchema }, { md5Engine, md5FallbackWarning }] =
    await Promise.all([import('../engine/root.js'), import('../engine/throughput.js'), import('../md5/engine.js')]);
  const data = await resolveDataRoot({ root: flags.root, actorsDir: flags.actorsDir });
  if (!flags.json)
    context.stderr.write(`bench: hashing every image of ${data.root} ${flags.rounds} times per setting…\n`);
  const report = await measureThroughput({ data, actors: flags.actor, workers: flags.workers, rounds: flags.rounds });
  const row = (m: NonNullable<typeof report.md5sum>) => ({
    label: m.label,
    workers: m.workers,
    seconds: m.seconds,
    median_seconds: m.medianSeconds,
    mb_per_second: m.mbPerSecond,
    files_per_second: m.filesPerSecond,
    ratio_to_md5sum: m.ratioToMd5sum,
  });
  const summary = BenchSummarySchema.parse({
    command: 'bench',
    root: data.root,
    files: report.files,
    bytes: report.bytes,
    md5sum: report.md5sum && row(report.md5sum),
    runs: report.runs.map(row),
    md5_engine: md5Engine(),
  });
  context.stderr.write(md5FallbackWarning());
  if (flags.json) {
    context.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `${summary.files} files, ${(summary.bytes / 1048576).toFixed(1)} MB; median of ${flags.rounds}; MD5: ${summary.md5_engine}`,
  ];
  lines.push('setting         time (s)    MB/s   files/s  time vs md5sum');
  for (const m of [...(summary.md5sum ? [summary.md5sum] : []), ...summary.runs]) {
    const ratio = m.ratio_to_md5sum === null ? (m.label === 'md5sum' ? '1.00' : '-') : m.ratio_to_md5sum.toFixed(2);
    lines.push(
      `${m.label.padEnd(14)} ${m.median_seconds.toFixed(3).padStart(9)} ${m.mb_per_second.toFixed(0).padStart(7)} ${m.files_per_second.toFixed(0).padStart(9)}  ${ratio.padStart(6)}`,
    );
  }
  if (!summary.md5sum) lines.push('(md5sum is not installed: no comparison)');
  context.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

function workerList(value: string): number[] {
  return value.split(',').map((part) => threadCount(part.trim()));
}

export function defineBench(run: (flags: BenchFlags) => Promise<void>): Command {
  const cores = availableParallelism();
  return new Command('bench')
    .description('hash throughput on this data root at each worker count, next to md5sum; writes nothing')
    .option('--root <dir>', 'the data root (default: the current directory)')
    .option('--actors-dir <dir>', 'actor folders (default: <root>/data/actors)')
    .option('--actor <id-or-name>', 'only this actor (repeatable)', (v: string, p: string[]) => [...p, v], [])
    .option(
      '--workers <list>',
      'worker counts to measure, comma-separated',
      workerList,
      Array.from({ length: cores }, (_, i) => i + 1),
    )
    .option('--rounds <n>', 'timed passes per setting (the median is reported)', positiveInteger, 3)
    .option('--json', 'print one JSON document on stdout')
    .action(run);
}
