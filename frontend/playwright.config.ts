import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "@playwright/test";

const root = path.dirname(fileURLToPath(import.meta.url));

/**
 * One free port for the whole run: chosen once in the main process and passed
 * to the workers through the environment (they load this file again).
 */
function e2ePort(): number {
  if (!process.env.HUBBUB_E2E_PORT) {
    const script =
      "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})";
    process.env.HUBBUB_E2E_PORT = execFileSync(process.execPath, ["-e", script], { encoding: "utf8" }).trim();
  }
  return Number(process.env.HUBBUB_E2E_PORT);
}

const port = e2ePort();
const baseURL = process.env.HUBBUB_E2E_BASE_URL ?? `http://127.0.0.1:${port}`;

/**
 * End-to-end tests against the real system: e2e/global-setup.ts starts
 * `bin/hubbub up` (hub, worker, embedded PostgreSQL/NATS/Redis) serving the
 * built frontend (`npm run e2e` builds it first) and stops it afterwards.
 */
export default defineConfig({
  testDir: path.join(root, "e2e"),
  outputDir: path.join(root, "test-results"),
  globalSetup: path.join(root, "e2e", "global-setup.ts"),
  fullyParallel: false,
  workers: 1, // two shared cores; the tests share one system
  retries: 0,
  forbidOnly: Boolean(process.env.CI),
  timeout: 90_000,
  expect: { timeout: 15_000 },
  reporter: [["list"], [path.join(root, "e2e", "summary-reporter.ts")]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      // Debian's chromium; never `npx playwright install`.
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
});
