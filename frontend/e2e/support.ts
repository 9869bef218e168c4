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
  expect(response.status(), await response.text()).toBe(201);
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
