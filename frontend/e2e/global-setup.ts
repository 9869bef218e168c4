/**
 * Starts the whole system once for the run and returns its teardown:
 *
 *   bin/hubbub up --port <free port>   (HUBBUB_STATE_DIR = a new temp dir)
 *
 * It serves frontend/out (built by `npm run e2e` / scripts/test-frontend
 * before Playwright starts) on the same origin as /api/v1 and /ws. Waits for
 * GET /api/v1/ready, creates an admin with the CLI, and hands the base URL
 * and the state dir to the workers through the environment. Teardown:
 * SIGTERM to `hubbub up` (it stops hubs, workers, then the servers, in that
 * order), then SIGKILL to whatever is left of its process group, then the
 * temp dir goes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { FullConfig } from "@playwright/test";
import { ADMIN, FRONTEND_ROOT, HUBBUB_BIN, REPO_ROOT, RESULTS_DIR, hubbubCli, systemEnv } from "./hubbub";

const START_TIMEOUT_MS = Number(process.env.HUBBUB_E2E_START_TIMEOUT_MS ?? 300_000);
const STOP_TIMEOUT_MS = 45_000;

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

async function waitReady(base: string, child: ChildProcess, exited: () => string | null): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const gone = exited();
    if (gone !== null) throw new Error(`bin/hubbub up exited before it was ready (${gone}); see test-results/hubbub-up.log`);
    try {
      const response = await fetch(`${base}/api/v1/ready`, { signal: AbortSignal.timeout(5_000) });
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`no 200 from ${base}/api/v1/ready within ${START_TIMEOUT_MS} ms (pid ${child.pid}); see test-results/hubbub-up.log`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export default async function globalSetup(config: FullConfig): Promise<() => Promise<void>> {
  void config;
  if (!existsSync(path.join(FRONTEND_ROOT, "out", "index.html"))) {
    throw new Error("frontend/out is missing: run `npm run build` first (`npm run e2e` does)");
  }
  const port = process.env.HUBBUB_E2E_PORT;
  if (!port) throw new Error("HUBBUB_E2E_PORT is not set (playwright.config.ts chooses it)");
  const base = `http://127.0.0.1:${port}`;
  const state = mkdtempSync(path.join(os.tmpdir(), "hubbub-e2e-"));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const log = createWriteStream(path.join(RESULTS_DIR, "hubbub-up.log"));

  // Its own process group (detached), so teardown can stop everything it started.
  const child = spawn(HUBBUB_BIN, ["up", "--port", port], {
    cwd: REPO_ROOT,
    env: { ...systemEnv(state), HUBBUB_ENV: "development" },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start bin/hubbub up");
  let exitStatus: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => {
      exitStatus = `code ${code}, signal ${signal}`;
      resolve();
    });
  });
  let banner = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    banner += chunk.toString();
    log.write(chunk);
  });
  child.stderr?.on("data", (chunk: Buffer) => log.write(chunk));

  // If this process dies without running the teardown (Ctrl-C), take the system with it.
  const emergency = () => killGroup(pid, "SIGKILL");
  process.once("exit", emergency);

  let stopped = false;
  const teardown = async () => {
    if (stopped) return;
    stopped = true;
    if (exitStatus === null) {
      killGroup(pid, "SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS))]);
    }
    if (groupAlive(pid)) killGroup(pid, "SIGKILL");
    process.removeListener("exit", emergency);
    log.end();
    rmSync(state, { recursive: true, force: true });
  };

  try {
    await waitReady(base, child, () => exitStatus);
    const announced = /API\s+(http:\/\/\S+?)\/api\/v1/.exec(banner)?.[1];
    if (announced && announced !== base) throw new Error(`hubbub up chose ${announced} instead of ${base} (port taken?)`);
    process.env.HUBBUB_E2E_STATE_DIR = state; // hubbubCli reads it
    await hubbubCli(["user", "create", "--admin", ADMIN.email, "--password-stdin"], `${ADMIN.password}\n`).catch(
      (error: unknown) => {
        throw new Error(`could not create the e2e admin: ${String(error)}`);
      },
    );
  } catch (error) {
    await teardown();
    throw error;
  }
  process.env.HUBBUB_E2E_STATE_DIR = state;
  process.env.HUBBUB_E2E_BASE_URL = base;
  return teardown;
}
