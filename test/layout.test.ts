/**
 * The thread boundary the layout shows (README "How it works"): code under workers/ runs only in a worker
 * thread, so the main thread may name its types but never load it; and a worker never loads the main
 * thread's machinery (the CLI, the server, locks, the S3 client, the pool itself).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '..');

function sources(folder: string): string[] {
  return readdirSync(join(REPO, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => join(folder, name));
}

/** The modules a file loads at run time: imports, side-effect imports, re-exports, `import()`; not `import type`. */
function runtimeImports(file: string): string[] {
  const text = readFileSync(join(REPO, file), 'utf8');
  const found: string[] = [];
  const pattern =
    /^(?:import|export)(?!\s+type\b)[^;]*?from\s*'([^']+)'|^import\s*'([^']+)'|import\(\s*'([^']+)'\s*\)/gms;
  for (const match of text.matchAll(pattern)) {
    const spec = match[1] ?? match[2] ?? match[3]!;
    found.push(spec.startsWith('.') ? relative(REPO, resolve(REPO, dirname(file), spec)) : spec);
  }
  return found;
}

describe('the thread boundary', () => {
  it('the main thread never loads code from workers/', () => {
    const crossings = sources('src').flatMap((file) =>
      runtimeImports(file)
        .filter((target) => target.startsWith('workers/'))
        .map((target) => `${file} → ${target}`),
    );
    expect(crossings).toEqual([]);
  });

  it('a worker never loads the main thread machinery', () => {
    const forbidden =
      /^(src\/(cli|server|lock|engine\/(pool|lazy-pool|sync|push-pull))\/?|piscina$|commander$|@aws-sdk\/client-s3$)/;
    const crossings = sources('workers').flatMap((file) =>
      runtimeImports(file)
        .filter((target) => forbidden.test(target))
        .map((target) => `${file} → ${target}`),
    );
    expect(crossings).toEqual([]);
  });

  it('reads the imports it checks (a worker file does load src/ modules)', () => {
    expect(runtimeImports('workers/assess.ts').some((target) => target.startsWith('src/'))).toBe(true);
  });
});
