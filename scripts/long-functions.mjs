#!/usr/bin/env node
// Lists every function in src/ and workers/ longer than the limit (issue 16: "no function over ~60 lines")
// and exits 1 if there is one. Lines are counted from the function's first line to its last, inclusive.
//
//   node scripts/long-functions.mjs [--max 60] [folder or file…]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import ts from 'typescript';

const { values, positionals } = parseArgs({
  options: { max: { type: 'string', default: '60' } },
  allowPositionals: true,
});
const max = Number(values.max);
const folders = positionals.length > 0 ? positionals : ['src', 'workers'];

function* sourceFiles(folder) {
  if (!statSync(folder).isDirectory()) {
    yield folder;
    return;
  }
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (/\.[cm]?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield path;
  }
}

/** A readable name for a function node: its own name, or the variable/property it is assigned to. */
function nameOf(node, file) {
  if (node.name) return node.name.getText(file);
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) && parent.name) {
    return parent.name.getText(file);
  }
  return '(anonymous)';
}

function longFunctions(path) {
  const file = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const last = file.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > max) found.push({ path, line: first + 1, name: nameOf(node, file), lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

const found = folders.flatMap((folder) => [...sourceFiles(folder)].flatMap(longFunctions));
for (const f of found) console.log(`${relative('.', f.path)}:${f.line} ${f.name} ${f.lines} lines`);
if (found.length > 0) {
  console.error(`${found.length} function(s) over ${max} lines`);
  process.exit(1);
}
console.log(`no function over ${max} lines in ${folders.join(', ')}`);
