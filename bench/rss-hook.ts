/**
 * Loaded with `node --import` into each timed CLI run: on exit, writes the process's peak RSS in KB to
 * $BENCH_RSS_FILE. Worker threads live in the same process, so this is the whole tree's peak.
 */
import { writeFileSync } from 'node:fs';

const target = process.env.BENCH_RSS_FILE;
if (target) process.on('exit', () => writeFileSync(target, String(process.resourceUsage().maxRSS)));
