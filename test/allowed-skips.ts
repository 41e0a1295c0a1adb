/**
 * A vitest reporter (vitest.config.ts) that fails the run when a test was skipped and is not listed, with
 * its reason, in test/allowed-skips.json: a test that cannot run on some machine (no browser, root
 * ignoring file modes, no /dev/full) must not let CI pass by quietly skipping it. A listed test that no
 * longer exists in a file that ran fails the run too, so the list cannot go stale.
 *
 * A run narrowed on purpose (`-t NAME`, `file:LINE`) marks the tests it leaves out as skipped, just as
 * `it.skip` does, so there only the tests that skipped themselves while running (`context.skip()`) are
 * checked. A `.only` left in a file is caught as well: it skips the file's other tests.
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Reporter, TestModule, TestSpecification, Vitest } from 'vitest/node';
import * as z from 'zod';

const LIST = resolve(import.meta.dirname, 'allowed-skips.json');

const AllowedSkips = z.strictObject({
  $comment: z.string().optional(),
  skips: z.array(
    z.strictObject({
      /** The test file, relative to the repository (`test/s3/client.test.ts`). */
      file: z.string(),
      /** The test's full name: its describe blocks and its own title, joined by ` > `. */
      test: z.string(),
      /** Why it may be skipped, and where. */
      reason: z.string().min(1),
    }),
  ),
});

export default class AllowedSkipsReporter implements Reporter {
  private vitest!: Vitest;
  private narrowed = false;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunStart(specifications: ReadonlyArray<TestSpecification>): void {
    this.narrowed =
      this.vitest.config.testNamePattern !== undefined ||
      specifications.some(
        (spec) => spec.testNamePattern !== undefined || spec.testLines?.length || spec.testIds?.length,
      );
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    if (this.narrowed)
      this.vitest.logger.log(
        'allowed skips: tests were chosen by name or line, so only the skips decided while running are checked',
      );
    const { skips } = AllowedSkips.parse(JSON.parse(readFileSync(LIST, 'utf8')));
    const root = this.vitest.config.root;
    const problems: string[] = [];
    for (const module of modules) {
      const file = module.relativeModuleId;
      const listed = skips.filter((s) => s.file === file);
      const names = new Set<string>();
      for (const test of module.children.allTests()) {
        names.add(test.fullName);
        const result = test.result();
        if (result.state !== 'skipped' || listed.some((s) => s.test === test.fullName)) continue;
        if (this.narrowed && test.options.mode !== 'run') continue;
        const why =
          result.note ?? (test.options.mode === 'todo' ? 'todo' : "skip, skipIf, runIf or another test's .only");
        problems.push(`skipped: ${file} > ${test.fullName} (${why})`);
      }
      // A file that failed to load has no tests to compare the list with.
      if (module.errors().length === 0) {
        for (const s of listed)
          if (!names.has(s.test))
            problems.push(`listed in ${relative(root, LIST)} but no such test: ${file} > ${s.test}`);
      }
    }
    if (problems.length === 0) return;
    this.vitest.logger.error(
      `\n${problems.join('\n')}\n` +
        `${problems.length} problem${problems.length === 1 ? '' : 's'} with skipped tests: make each test run here, or list it with its reason in ${relative(root, LIST)}. ` +
        'The run fails.\n',
    );
    process.exitCode = 1;
  }
}
