import type { Reporter, TestModule } from "vitest/node";

/** Prints one closing `N passed, N failed` line for CI to read. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const testModule of testModules) {
      for (const test of testModule.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed += 1;
        else if (state === "failed") failed += 1;
        else skipped += 1;
      }
    }
    const extra = [skipped ? `${skipped} skipped` : "", unhandledErrors.length ? `${unhandledErrors.length} errors` : ""]
      .filter(Boolean)
      .join(", ");
    process.stdout.write(`\nvitest: ${passed} passed, ${failed} failed${extra ? `, ${extra}` : ""}\n`);
  }
}
