import path from "node:path";
import { expect, test } from "@playwright/test";
import { RESULTS_DIR, caughtMail, mailedLink, resetLinkFor } from "./hubbub";
import { PASSWORD, collectErrors, expectLive, registerViaApi, signIn, signOut, uniqueEmail } from "./support";

test("register, signed in and asked to confirm the address, reload (silent refresh), sign out, sign in, sign out", async ({ page }) => {
  const errors = collectErrors(page);
  const email = uniqueEmail("reg");
  await page.goto("/register/");
  await page.getByLabel("Name").fill("Registered Person");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Repeat password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();

  // Signed in (an unverified account may), and told to confirm the address.
  await expect(page.getByRole("heading", { name: "Confirm your email" })).toBeVisible();
  await expect(page.getByText(`We sent a link to ${email}.`)).toBeVisible();
  await page.getByRole("link", { name: "Continue" }).click();
  await expect(page).toHaveURL(/\/workspaces\/$/);
  await expect(page.getByRole("button", { name: "Account menu for Registered Person" })).toBeVisible();
  await expectLive(page);

  // A reload forgets the access token (memory only): the httpOnly cookie brings the session back.
  await page.reload();
  await expect(page.getByRole("button", { name: "Account menu for Registered Person" })).toBeVisible();
  await expectLive(page);

  await signOut(page);
  await expect(page.getByTestId("sign-out-reason")).toHaveText("You have signed out.");
  // Signed out for real: the protected page sends us back.
  await page.goto("/profile/");
  await expect(page).toHaveURL(/\/login\/\?next=%2Fprofile%2F$/);

  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/profile\/$/); // and back to where we were going
  await expect(page.getByRole("heading", { name: "Your account" })).toBeVisible();
  await expectLive(page);
  await signOut(page);
  expect(errors).toEqual([]);
});

test("the mailed verification link confirms the address once", async ({ page, request }) => {
  const errors = collectErrors(page);
  const account = await registerViaApi(request, "verify");
  const link = await mailedLink(account.email, "/verify-email");
  const url = new URL(link);
  await page.goto(`${url.pathname}${url.hash}`);
  await expect(page.getByRole("heading", { name: "Email confirmed" })).toBeVisible();
  await expect(page).toHaveURL(/\/verify-email\/$/); // the token left the address bar
  const login = await request.post("/api/v1/auth/login", { data: { email: account.email, password: account.password } });
  expect(((await login.json()) as { user: { email_verified: boolean } }).user.email_verified).toBe(true);

  expect(errors).toEqual([]);

  // Used once: the same link again is refused (a 400, which the browser logs).
  await page.goto(`${url.pathname}${url.hash}`);
  await expect(page.getByTestId("verify-error")).toContainText("invalid, used or expired");
});

test("registration errors from the hub land on their fields; a taken email reads like a new one", async ({ page, request }) => {
  const taken = await registerViaApi(request, "taken");
  await page.goto("/register/");
  await page.getByLabel("Name").fill("Someone");
  await page.getByLabel("Email").fill(uniqueEmail("policy"));
  // Long enough for the form, but on the hub's common-password list.
  await page.getByLabel("Password", { exact: true }).fill("password123");
  await page.getByLabel("Repeat password").fill("password123");
  await page.getByRole("button", { name: "Create account" }).click();
  const password = page.getByLabel("Password", { exact: true });
  await expect(password).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByText("Is one of the most common passwords; choose another.")).toBeVisible();

  // Someone else's address: the hub answers as for a new one (its owner gets a note), and
  // the page, which cannot sign in with this password, says to check the mail.
  const other = "a different password 5150";
  await page.getByLabel("Email").fill(taken.email);
  await password.fill(other);
  await page.getByLabel("Repeat password").fill(other);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();
  await expect(page).toHaveURL(/\/register\/$/);
  await expect.poll(async () => (await caughtMail()).some((m) => m.to === taken.email && m.subject === "Your Hubbub account")).toBe(true);
});

test("login with a wrong password shows the error on the form", async ({ page, request }) => {
  const account = await registerViaApi(request, "wrongpw");
  await page.goto("/login/");
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password", { exact: true }).fill("not the password at all");
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = page.locator("form[aria-label='Sign in'] [role='alert']");
  await expect(alert).toHaveText("Wrong email or password.");
  await expect(page).toHaveURL(/\/login\/$/);
  await page.screenshot({ path: path.join(RESULTS_DIR, "login-wrong-password.png"), fullPage: true });

  // An unknown email reads the same (the hub does not say which one was wrong).
  await page.getByLabel("Email").fill(uniqueEmail("nobody"));
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(alert).toHaveText("Wrong email or password.");
});

test("password reset end to end: request, mail (hubbub mail), link with #token, new password, sign in", async ({ page, request }) => {
  const account = await registerViaApi(request, "reset");
  await page.goto("/login/");
  await page.getByRole("link", { name: "Forgot password?" }).click();
  await expect(page).toHaveURL(/\/forgot-password\/$/);
  await page.getByLabel("Email").fill(account.email);
  await page.getByRole("button", { name: "Send reset link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();

  const link = await resetLinkFor(account.email);
  expect(link).toMatch(/\/reset-password#token=/);
  const url = new URL(link);
  await page.goto(`${url.pathname}${url.hash}`); // the mailed origin is the hub's own: same server
  await expect(page.getByRole("heading", { name: "Choose a new password" })).toBeVisible();
  await expect(page).toHaveURL(/\/reset-password\/$/); // the token left the address bar

  const fresh = "a brand new password 9034";
  await page.getByLabel("New password", { exact: true }).fill(fresh);
  await page.getByLabel("Repeat password").fill(fresh);
  await page.getByRole("button", { name: "Save password" }).click();
  await expect(page.getByRole("heading", { name: "Password changed" })).toBeVisible();

  // The link works once.
  await page.goto(`${url.pathname}${url.hash}`);
  await page.getByLabel("New password", { exact: true }).fill("yet another password 1234");
  await page.getByLabel("Repeat password").fill("yet another password 1234");
  await page.getByRole("button", { name: "Save password" }).click();
  await expect(page.getByText("This reset link is invalid, used or expired; ask for a new one.")).toBeVisible();

  await signIn(page, { email: account.email, password: fresh });
  await expect(page).toHaveURL(/\/workspaces\/$/);
  await signOut(page);
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password", { exact: true }).fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator("form[aria-label='Sign in'] [role='alert']")).toHaveText("Wrong email or password.");
});
