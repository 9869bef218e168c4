/**
 * The real system under test: `bin/hubbub up` (hub + worker + embedded
 * PostgreSQL, NATS, Redis) serving the built frontend, in a throwaway
 * HUBBUB_STATE_DIR, plus the CLI the tests use beside the browser
 * (`hubbub user create`, `hubbub mail`). Shared by global-setup.ts and the specs.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
/** frontend/e2e → frontend → the repository */
export const REPO_ROOT = path.resolve(here, "..", "..");
export const FRONTEND_ROOT = path.resolve(here, "..");
export const RESULTS_DIR = path.join(FRONTEND_ROOT, "test-results");
export const HUBBUB_BIN = path.join(REPO_ROOT, "bin", "hubbub");

/** Settings of the system under test (environment of `hubbub up`). */
export const E2E_SETTINGS: Record<string, string> = {
  // Short-lived access tokens: every test lives through several refreshes and
  // `expiring` pushes, so a double refresh (which ends the session) would show.
  HUBBUB_ACCESS_TOKEN_TTL_S: "30",
  // Many sign-ins from 127.0.0.1 in a few minutes; the limits are tested in the backend suite.
  HUBBUB_RATE_LOGIN_IP: "1000/60",
  HUBBUB_RATE_LOGIN_ACCOUNT: "100/60",
  HUBBUB_RATE_LOGIN_ACCOUNT_IP: "100/60",
  HUBBUB_RATE_LOGIN_SUCCESS_IP: "1000/60",
  HUBBUB_RATE_LOGIN_SUCCESS_ACCOUNT: "100/60",
  HUBBUB_MAX_SESSIONS_PER_USER: "1000",
  HUBBUB_RATE_REGISTER_IP: "1000/3600",
  HUBBUB_RATE_RESET_IP: "100/3600",
  HUBBUB_RATE_RESET_ACCOUNT: "50/3600",
  HUBBUB_RATE_RESET_ACCOUNT_IP: "50/3600",
};

/**
 * Settings that would point the throwaway system at something else: shared
 * servers (the test suite's DATABASE_URL etc.), real SMTP (then `hubbub mail`
 * would catch nothing), another public URL (the reset links), a namespace.
 */
const INHERITED_BUT_NOT_WANTED = [
  "DATABASE_URL",
  "NATS_URL",
  "REDIS_URL",
  "HUBBUB_NAMESPACE",
  "HUBBUB_SMTP_HOST",
  "HUBBUB_PUBLIC_URL",
  "HUBBUB_FRONTEND_DIR",
];

/** The environment for `hubbub up` and the CLI: ours, minus what must not leak in, plus the e2e settings. */
export function systemEnv(state: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...E2E_SETTINGS, HUBBUB_STATE_DIR: state };
  for (const name of INHERITED_BUT_NOT_WANTED) delete env[name];
  return env;
}

export const ACCESS_TOKEN_TTL_S = Number(E2E_SETTINGS.HUBBUB_ACCESS_TOKEN_TTL_S);

export const ADMIN = { email: "admin@example.com", password: "e2e admin password 7411", name: "admin" };

export function stateDir(): string {
  const dir = process.env.HUBBUB_E2E_STATE_DIR;
  if (!dir) throw new Error("HUBBUB_E2E_STATE_DIR is not set: run through playwright.config.ts (global setup)");
  return dir;
}

/** Run `bin/hubbub ARGS` against the running system (it finds it through the state dir). */
export function hubbubCli(args: string[], input?: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      HUBBUB_BIN,
      args,
      { cwd: REPO_ROOT, env: systemEnv(stateDir()), timeout: timeoutMs, maxBuffer: 4 << 20 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`hubbub ${args.join(" ")} failed: ${error.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface CaughtMail {
  to: string;
  subject: string;
  body: string;
}

/** `hubbub mail`: the dev mail catcher's newest `limit` messages, newest first (it prints them oldest first). */
export async function caughtMail(limit = 300): Promise<CaughtMail[]> {
  const out = await hubbubCli(["mail", "--limit", String(limit)]);
  return out
    .split(/^--- #\d+ .*$/m)
    .slice(1)
    .reverse()
    .map((block) => {
      const to = /^To: (.+)$/m.exec(block)?.[1]?.trim() ?? "";
      const subject = /^Subject: (.+)$/m.exec(block)?.[1]?.trim() ?? "";
      const body = block.split(/\n\n/).slice(1).join("\n\n").trim();
      return { to, subject, body };
    });
}

/** The newest `<origin><page>#token=…` link mailed to `email` (mail is written with the commit; poll anyway). */
export async function mailedLink(email: string, page: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const pattern = new RegExp(`(https?:\\/\\/\\S+${page.replace(/[/-]/g, "\\$&")}\\/?#token=[\\w-]+)`);
  for (;;) {
    for (const mail of await caughtMail()) {
      const link = mail.to === email ? pattern.exec(mail.body)?.[1] : undefined;
      if (link) return link;
    }
    if (Date.now() > deadline) throw new Error(`no ${page} link mailed to ${email} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** The reset link mailed to `email`. */
export function resetLinkFor(email: string, timeoutMs = 20_000): Promise<string> {
  return mailedLink(email, "/reset-password", timeoutMs);
}

/** The token of the newest `page` link mailed to `email`. */
export async function mailedToken(email: string, page: string): Promise<string> {
  return new URL(await mailedLink(email, page)).hash.replace(/^#token=/, "");
}
