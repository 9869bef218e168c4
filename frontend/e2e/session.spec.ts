import { expect, test } from "@playwright/test";
import { ACCESS_TOKEN_TTL_S } from "./hubbub";
import { collectErrors, expectLive, registerViaApi, signIn } from "./support";

test("a page load without a session goes to login and comes back after signing in (?next=)", async ({ page, request, context }) => {
  const account = await registerViaApi(request, "next");
  await signIn(page, account);
  await context.clearCookies(); // the refresh cookie is the session, as far as a new page load knows
  await page.goto("/admin/users/?q=x");
  await expect(page).toHaveURL(/\/login\/\?next=%2Fadmin%2Fusers%2F%3Fq%3Dx$/);
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password", { exact: true }).fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/admin\/users\/\?q=x$/);
  await expect(page.getByText("Admins only")).toBeVisible(); // a member: the page says so, the hub would refuse anyway

  // Only same-site paths are followed.
  await context.clearCookies();
  await page.goto("/login/?next=//evil.example/");
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password", { exact: true }).fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/workspaces\/$/);
});

test("an expired session sends the open page to login: the cookie is gone when the token runs out", async ({ page, request, context }) => {
  test.setTimeout(ACCESS_TOKEN_TTL_S * 1000 * 3);
  const errors = collectErrors(page);
  const account = await registerViaApi(request, "expiry");
  await signIn(page, account, "/login/?next=/profile/");
  await expect(page).toHaveURL(/\/profile\/$/);
  await expectLive(page);
  await context.clearCookies();
  // Nothing to do but wait: the refresh before expiry (or the hub's `expiring` push) finds no session.
  await expect(page).toHaveURL(/\/login\/\?next=%2Fprofile%2F&reason=expired$/, { timeout: ACCESS_TOKEN_TTL_S * 1000 + 15_000 });
  await expect(page.getByTestId("sign-out-reason")).toHaveText("Your session has expired. Sign in again to continue.");
  expect(errors).toEqual([]);
});

test("two tabs of one browser stay signed in across several token refreshes (one refresh at a time)", async ({ context, request }) => {
  test.setTimeout(ACCESS_TOKEN_TTL_S * 1000 * 4);
  const account = await registerViaApi(request, "tabs");
  const first = await context.newPage();
  await signIn(first, account);
  const second = await context.newPage();
  await second.goto("/profile/");
  await expect(second.getByRole("heading", { name: "Your account" })).toBeVisible();
  await Promise.all([expectLive(first), expectLive(second)]);

  // Both tabs refresh the shared cookie about every 22 s. Were two refreshes ever
  // sent at once, the hub would take the second for a stolen token and end the session.
  const refreshes: string[] = [];
  context.on("response", (response) => {
    if (response.url().endsWith("/api/v1/auth/refresh")) refreshes.push(String(response.status()));
  });
  await first.waitForTimeout(ACCESS_TOKEN_TTL_S * 1000 * 2 + 5_000);
  expect(refreshes.length).toBeGreaterThanOrEqual(4);
  expect(refreshes.every((s) => s === "200")).toBe(true);
  for (const page of [first, second]) {
    await expect(page.getByRole("button", { name: /^Account menu for/ })).toBeVisible();
    await expectLive(page);
  }
  await second.reload();
  await expect(second.getByRole("heading", { name: "Your account" })).toBeVisible();
});
