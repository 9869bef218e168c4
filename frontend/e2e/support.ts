import { expect, type APIRequestContext, type Browser, type BrowserContext, type Page } from "@playwright/test";

let serial = 0;

/** A new address per call and per run (the system is fresh each run, but tests may repeat). */
export function uniqueEmail(prefix: string): string {
  serial += 1;
  return `${prefix}-${Date.now().toString(36)}-${serial}@example.com`;
}

export const PASSWORD = "a long e2e password 4821";

export interface Account {
  email: string;
  password: string;
  name: string;
}

/** Create an account through the API (setup for tests that are not about registering). */
export async function registerViaApi(request: APIRequestContext, prefix: string): Promise<Account> {
  const account = { email: uniqueEmail(prefix), password: PASSWORD, name: `${prefix} user` };
  const response = await request.post("/api/v1/auth/register", {
    data: { email: account.email, password: account.password, display_name: account.name },
  });
  // 202: the hub answers every registration alike (the account exists; the address is confirmed by mail).
  expect([201, 202], await response.text()).toContain(response.status());
  return account;
}

/** Sign in through the login form and wait for the signed-in shell. */
export async function signIn(page: Page, account: Pick<Account, "email" | "password">, path = "/login/"): Promise<void> {
  await page.goto(path);
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password", { exact: true }).fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("button", { name: /^Account menu for/ })).toBeVisible();
}

export async function expectLive(page: Page): Promise<void> {
  await expect(page.getByTestId("connection-state")).toHaveAttribute("data-state", "live");
}

export async function signOut(page: Page, everywhere = false): Promise<void> {
  await page.getByRole("button", { name: /^Account menu for/ }).click();
  await page.getByRole("menuitem", { name: everywhere ? "Sign out everywhere" : "Sign out", exact: true }).click();
  await expect(page).toHaveURL(/\/login\/\?reason=logout$/);
}

/** Page errors and console errors, to assert none happened. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    // The browser logs every non-2xx fetch; those are expected (a 401 is how "signed out" looks).
    if (/Failed to load resource: the server responded with a status of (401|403|404|409|422|429)/.test(text)) return;
    errors.push(text);
  });
  return errors;
}

export async function newPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  return { context, page };
}

// ---------------------------------------------------------------- REST as a user (board specs)

/**
 * REST calls as `account`, outside the browser: a bearer token from
 * `POST /auth/login` (no X-Requested-With, so the tokens come in the body),
 * signed in again when it is 20 s old (the e2e system's tokens live 30 s).
 */
export function restAs(request: APIRequestContext, account: Pick<Account, "email" | "password">) {
  let token: string | null = null;
  let since = 0;
  async function bearer(): Promise<string> {
    if (!token || Date.now() - since > 20_000) {
      const response = await request.post("/api/v1/auth/login", { data: { email: account.email, password: account.password } });
      expect(response.status(), await response.text()).toBe(200);
      token = ((await response.json()) as { access_token: string }).access_token;
      since = Date.now();
    }
    return token;
  }
  async function call<T>(method: "GET" | "POST" | "PATCH" | "DELETE", path: string, data?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const response = await request.fetch(`/api/v1${path}`, {
      method,
      data,
      headers: { Authorization: `Bearer ${await bearer()}`, ...(method === "GET" ? {} : { "Idempotency-Key": crypto.randomUUID() }), ...headers },
    });
    expect(response.ok(), `${method} ${path} → ${response.status()} ${await response.text()}`).toBe(true);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
  return { call, bearer };
}
