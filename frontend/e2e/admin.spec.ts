import path from "node:path";
import { expect, test, type Page } from "@playwright/test";
import { ADMIN, RESULTS_DIR } from "./hubbub";
import { expectLive, newPage, registerViaApi, signIn } from "./support";

async function findUser(admin: Page, email: string) {
  await admin.goto("/admin/users/");
  await admin.getByRole("searchbox", { name: "Search" }).fill(email);
  const row = admin.locator(`[data-testid="user-row"][data-email="${email}"]`);
  await expect(row).toBeVisible();
  await expect(admin.getByTestId("user-row")).toHaveCount(1);
  return row;
}

test("an admin deactivates a user: the user's open page is signed out at once, and sign-in is refused until reactivated", async ({ browser, request }) => {
  const account = await registerViaApi(request, "deact");
  const user = await newPage(browser);
  const admin = await newPage(browser);
  try {
    await signIn(user.page, account);
    await expectLive(user.page);
    await signIn(admin.page, ADMIN);
    const row = await findUser(admin.page, account.email);
    await admin.page.screenshot({ path: path.join(RESULTS_DIR, "admin-users.png"), fullPage: true });

    await row.getByRole("button", { name: `Deactivate ${account.email}` }).click();
    const dialog = admin.page.getByRole("alertdialog");
    await expect(dialog).toContainText("signed out everywhere at once");
    await dialog.getByRole("button", { name: "Deactivate" }).click();
    await expect(row.getByText("Deactivated")).toBeVisible();

    // The hub closes the user's socket with 4003 (docs/protocol.md); the page signs out
    // without any action of the user, and says why.
    await expect(user.page).toHaveURL(/\/login\/\?(next=%2Fworkspaces%2F&)?reason=deactivated$/);
    await expect(user.page.getByTestId("sign-out-reason")).toHaveText(
      "This account was deactivated by an administrator.",
    );

    await user.page.getByLabel("Email").fill(account.email);
    await user.page.getByLabel("Password", { exact: true }).fill(account.password);
    await user.page.getByRole("button", { name: "Sign in" }).click();
    await expect(user.page.locator("form[aria-label='Sign in'] [role='alert']")).toHaveText("This account is deactivated.");

    await row.getByRole("button", { name: `Reactivate ${account.email}` }).click();
    await expect(row.getByText("Active", { exact: true })).toBeVisible();
    await user.page.getByRole("button", { name: "Sign in" }).click();
    await expect(user.page).toHaveURL(/\/workspaces\/$/);
    // The realtime client starts again after the 4003 halt (it stayed halted and
    // signed the new session out at once: the halt outlived the release).
    await expectLive(user.page);
    await expect(user.page).toHaveURL(/\/workspaces\/$/);
  } finally {
    await user.context.close();
    await admin.context.close();
  }
});

test("a role change reaches the user as a toast over user:<id>, and the admin pages open up", async ({ browser, request }) => {
  const account = await registerViaApi(request, "promote");
  const user = await newPage(browser);
  const admin = await newPage(browser);
  try {
    await signIn(user.page, account);
    await expectLive(user.page);
    await expect(user.page.getByRole("link", { name: "Users" })).toHaveCount(0);

    await signIn(admin.page, ADMIN);
    const row = await findUser(admin.page, account.email);
    await row.getByRole("combobox", { name: `Role of ${account.email}` }).selectOption("admin");
    await expect(admin.page.getByTestId("toast").filter({ hasText: "Role changed" })).toBeVisible();

    const toast = user.page.getByTestId("toast").filter({ hasText: "Your role changed" });
    await expect(toast).toContainText("You are now an administrator.");
    await user.page.screenshot({ path: path.join(RESULTS_DIR, "notification-toast.png") });
    await user.page.getByRole("link", { name: "Users" }).click();
    await expect(user.page.getByTestId("user-row").first()).toBeVisible(); // the new token says admin
  } finally {
    await user.context.close();
    await admin.context.close();
  }
});

test("profile: rename (the shell follows), wrong current password on its field, sign out everywhere closes the other tab", async ({ context, request }) => {
  const account = await registerViaApi(request, "profile");
  const page = await context.newPage();
  await signIn(page, account, "/login/?next=/profile/");
  const other = await context.newPage();
  await other.goto("/workspaces/");
  await expectLive(other);

  await page.getByLabel("Name").fill("Renamed Person");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("button", { name: "Account menu for Renamed Person" })).toBeVisible();
  // The other tab hears it on user:<id>.
  await expect(other.getByRole("button", { name: "Account menu for Renamed Person" })).toBeVisible();

  await page.getByLabel("Current password").fill("not my password at all");
  await page.getByLabel("New password", { exact: true }).fill("a different long password 55");
  await page.getByLabel("Repeat new password").fill("a different long password 55");
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByLabel("Current password")).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByText("The current password is wrong.")).toBeVisible();
  await page.getByLabel("Current password").scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(RESULTS_DIR, "profile.png") });

  await page.getByRole("button", { name: "Sign out everywhere" }).click();
  await expect(page).toHaveURL(/\/login\/\?reason=logout$/);
  // The other tab's socket is closed by the hub (4001); its next token request finds no session.
  await expect(other).toHaveURL(/\/login\/.*reason=(revoked|expired)/, { timeout: 30_000 });
});
