import type { FullResult, Reporter, TestCase, TestResult } from "@playwright/test/reporter";

/** Prints one closing `playwright: N passed, N failed` line for CI to read. */
export default class SummaryReporter implements Reporter {
  private readonly outcomes = new Map<TestCase, TestResult["status"]>();

  onTestEnd(test: TestCase, result: TestResult): void {
    this.outcomes.set(test, result.status);
  }

  onEnd(result: FullResult): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const status of this.outcomes.values()) {
      if (status === "passed") passed += 1;
      else if (status === "skipped") skipped += 1;
      else failed += 1;
    }
    // A failed global setup runs no test: count the run as failed, not as "0 failed".
    if (result.status !== "passed" && failed === 0) failed = 1;
    process.stdout.write(`\nplaywright: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
  }

  printsToStdio(): boolean {
    return false;
  }
}
