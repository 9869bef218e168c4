import path from "node:path";
import { expect, test, type APIRequestContext, type Page } from "@playwright/test";
import { RESULTS_DIR, caughtMail, mailedLink, mailedToken } from "./hubbub";
import { collectErrors, expectLive, newPage, registerViaApi, signIn, uniqueEmail, type Account } from "./support";

/** An access token for REST calls made "elsewhere" (not through the page under test). */
async function tokenFor(request: APIRequestContext, account: Pick<Account, "email" | "password">): Promise<string> {
  const response = await request.post("/api/v1/auth/login", { data: { email: account.email, password: account.password } });
  expect(response.status(), await response.text()).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

async function createWorkspaceViaApi(request: APIRequestContext, token: string, name: string): Promise<string> {
  const response = await request.post("/api/v1/workspaces", { data: { name }, headers: { Authorization: `Bearer ${token}` } });
  expect(response.status(), await response.text()).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

/** Confirm `account`'s address with the link the hub mailed at registration. */
async function verifyViaMail(request: APIRequestContext, account: Pick<Account, "email">): Promise<void> {
  const token = await mailedToken(account.email, "/verify-email");
  const response = await request.post("/api/v1/auth/verify-email", { data: { token } });
  expect(response.status(), await response.text()).toBe(204);
}

/** `account` accepts the newest invitation mailed to it, over REST (its open pages hear the change live). */
async function acceptViaMail(request: APIRequestContext, account: Pick<Account, "email" | "password">): Promise<void> {
  const token = await mailedToken(account.email, "/invitations");
  const response = await request.post("/api/v1/invitations/accept", {
    data: { token },
    headers: { Authorization: `Bearer ${await tokenFor(request, account)}`, "Idempotency-Key": crypto.randomUUID() },
  });
  expect(response.status(), await response.text()).toBe(200);
}

function workspaceIdOf(page: Page): string {
  const id = new URL(page.url()).searchParams.get("id");
  expect(id).toBeTruthy();
  return id!;
}

function memberRow(page: Page, email: string) {
  return page.locator(`[data-testid="member-row"][data-email="${email}"]`);
}

test("create a workspace in the UI; a member invited by its owner shows up live on the other user's pages once they accept; server errors are shown", async ({
  browser,
  request,
}) => {
  const owner = await registerViaApi(request, "owner");
  const other = await registerViaApi(request, "other");
  const third = await registerViaApi(request, "third");
  await verifyViaMail(request, other);
  await verifyViaMail(request, third);
  const a = await newPage(browser);
  const b = await newPage(browser);
  const errorsA = collectErrors(a.page);
  const errorsB = collectErrors(b.page);
  try {
    await signIn(a.page, owner);
    await signIn(b.page, other);
    await expectLive(b.page);
    await expect(b.page.getByText("No workspaces yet")).toBeVisible();

    // Create, with the client-side check first.
    const name = `Team ${Date.now().toString(36)}`;
    await a.page.getByRole("button", { name: "New workspace" }).click();
    const form = a.page.getByRole("form", { name: "New workspace" });
    await form.getByRole("button", { name: "Create" }).click();
    await expect(form.getByText("Enter a name")).toBeVisible();
    await form.getByLabel("Workspace name").fill(name);
    await form.getByRole("button", { name: "Create" }).click();
    const row = a.page.getByTestId("workspace-row").filter({ hasText: name });
    await expect(row).toBeVisible();
    await expect(row.getByText("owner", { exact: true })).toBeVisible();
    await a.page.screenshot({ path: path.join(RESULTS_DIR, "workspaces.png"), fullPage: true });

    // Members: the owner adds the other (registered) user — an invitation, which they accept.
    await row.getByRole("link", { name: "Members" }).click();
    await expect(a.page).toHaveURL(/\/workspace\/members\/\?id=/);
    const workspaceId = workspaceIdOf(a.page);
    await expect(memberRow(a.page, owner.email)).toHaveAttribute("data-role", "owner");
    const add = a.page.getByRole("form", { name: "Add a member" });
    await add.getByLabel("Email").fill(other.email);
    await add.getByLabel("Role").selectOption("member");
    await add.getByRole("button", { name: "Add member" }).click();
    await expect(add.getByTestId("add-outcome")).toHaveAttribute("data-outcome", "invited");
    await expect(add.getByTestId("add-outcome")).toContainText(`Invitation sent to ${other.email} (member): they join when they accept it.`);
    await expect(a.page.locator(`[data-testid="invitation-row"][data-email="${other.email}"]`)).toBeVisible();
    await expect(memberRow(a.page, other.email)).toHaveCount(0); // not a member before accepting
    await acceptViaMail(request, other);
    await expect(memberRow(a.page, other.email)).toHaveAttribute("data-role", "member");

    // The other user's open list hears it on user:<id>, without a reload.
    const otherRow = b.page.locator(`[data-testid="workspace-row"][data-workspace-id="${workspaceId}"]`);
    await expect(otherRow).toBeVisible();
    await expect(otherRow.getByText("member", { exact: true })).toBeVisible();
    await otherRow.getByRole("link", { name: "Members" }).click();
    await expect(memberRow(b.page, other.email)).toBeVisible();
    await expect(b.page.locator("table[aria-label='Members']")).toHaveAttribute("data-live", "subscribed");

    // Changes by the owner reach the other user's members page live (member.* on workspace:<id>).
    await a.page.getByRole("combobox", { name: `Role of ${other.email}` }).selectOption("admin");
    await expect(memberRow(b.page, other.email)).toHaveAttribute("data-role", "admin");
    await add.getByLabel("Email").fill(third.email);
    await add.getByLabel("Role").selectOption("viewer");
    await add.getByRole("button", { name: "Add member" }).click();
    await expect(add.getByTestId("add-outcome")).toContainText(`Invitation sent to ${third.email} (viewer)`);
    await acceptViaMail(request, third);
    await expect(memberRow(b.page, third.email)).toHaveAttribute("data-role", "viewer");
    // The other user is an admin now: the add form appears for them too.
    await expect(b.page.getByRole("form", { name: "Add a member" })).toBeVisible();
    await b.page.screenshot({ path: path.join(RESULTS_DIR, "members.png"), fullPage: true });

    // An email without an account reads the same: an invitation (no hint whether it has an account).
    const stranger = uniqueEmail("stranger");
    await add.getByLabel("Email").fill(stranger);
    await add.getByRole("button", { name: "Add member" }).click();
    await expect(add.getByTestId("add-outcome")).toHaveAttribute("data-outcome", "invited");
    await expect(add.getByTestId("add-outcome")).toContainText(`Invitation sent to ${stranger} (viewer): they join when they accept it.`);

    // It is pending on both pages (the other's hears invitation.created); the other, an
    // admin now, revokes it, and it leaves the owner's list live (invitation.revoked).
    const pendingA = a.page.locator(`[data-testid="invitation-row"][data-email="${stranger}"]`);
    const pendingB = b.page.locator(`[data-testid="invitation-row"][data-email="${stranger}"]`);
    await expect(pendingA).toBeVisible();
    await expect(pendingB).toBeVisible();
    await b.page.screenshot({ path: path.join(RESULTS_DIR, "members-invitations.png"), fullPage: true });
    await b.page.getByRole("button", { name: `Revoke the invitation of ${stranger}` }).click();
    await b.page.getByRole("alertdialog").getByRole("button", { name: "Revoke" }).click();
    await expect(pendingB).toHaveCount(0);
    await expect(pendingA).toHaveCount(0);

    // Removal is live too.
    await a.page.getByRole("button", { name: `Remove ${third.email}` }).click();
    await a.page.getByRole("alertdialog").getByRole("button", { name: "Remove" }).click();
    await expect(memberRow(b.page, third.email)).toHaveCount(0);

    // A workspace always keeps an owner: the last owner cannot leave, and the page says why.
    await a.page.getByRole("button", { name: "Leave" }).click();
    await a.page.getByRole("alertdialog").getByRole("button", { name: "Leave" }).click();
    await expect(a.page.getByTestId("members-error")).toContainText(/owner/i);
    await expect(a.page).toHaveURL(/\/workspace\/members\//);

    expect(errorsA).toEqual([]);
    expect(errorsB).toEqual([]);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

test("the activity feed shows a change made over REST without a reload, newest first", async ({ browser, request }) => {
  const owner = await registerViaApi(request, "feed");
  const token = await tokenFor(request, owner);
  const workspaceId = await createWorkspaceViaApi(request, token, "Feed workspace");
  const { context, page } = await newPage(browser);
  try {
    await signIn(page, owner, `/login/?next=${encodeURIComponent(`/workspace/activity/?id=${workspaceId}`)}`);
    await expect(page).toHaveURL(/\/workspace\/activity\/\?id=/);
    await expectLive(page);
    const entries = page.getByTestId("activity-entry");
    await expect(entries.first()).toHaveAttribute("data-action", "workspace.created");
    const before = await entries.count();

    const title = `Written elsewhere ${Date.now().toString(36)}`;
    const created = await request.post(`/api/v1/workspaces/${workspaceId}/resources`, {
      data: { kind: "task", title },
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(created.status(), await created.text()).toBe(201);

    await expect(entries.first()).toHaveAttribute("data-action", "resource.created");
    await expect(entries.first()).toContainText(title);
    await expect(entries).toHaveCount(before + 1);

    const renamed = await request.patch(`/api/v1/workspaces/${workspaceId}`, {
      data: { name: "Feed workspace, renamed" },
      headers: { Authorization: `Bearer ${token}`, "If-Match": '"1"' },
    });
    expect(renamed.status(), await renamed.text()).toBe(200);
    await expect(entries.first()).toHaveAttribute("data-action", "workspace.updated");
    await expect(entries).toHaveCount(before + 2); // each row once: no duplicates from the refetches
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Activity · Feed workspace, renamed");
    await page.screenshot({ path: path.join(RESULTS_DIR, "activity.png"), fullPage: true });
  } finally {
    await context.close();
  }
});

test("an invitation mailed to a new address: the link survives signing in, accepting waits for the confirmed address, then opens the workspace", async ({
  browser,
  request,
}) => {
  const owner = await registerViaApi(request, "inviter");
  const token = await tokenFor(request, owner);
  const workspaceId = await createWorkspaceViaApi(request, token, "Invited workspace");
  const email = uniqueEmail("invitee");
  const invited = await request.post(`/api/v1/workspaces/${workspaceId}/invitations`, {
    data: { email, role: "member" },
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(invited.status(), await invited.text()).toBe(201);
  const account = { email, password: "an invitee password 9051", name: "Invitee" };
  const registered = await request.post("/api/v1/auth/register", {
    data: { email, password: account.password, display_name: account.name },
  });
  expect(registered.status()).toBe(202);

  let link: string | undefined;
  await expect
    .poll(
      async () => {
        const mail = (await caughtMail()).find((m) => m.to === email && /invited/i.test(m.subject));
        link = mail ? /(\/invitations\/?#token=[\w-]+)/.exec(mail.body)?.[1] : undefined;
        return link ?? null;
      },
      { timeout: 20_000 },
    )
    .not.toBeNull();

  const { context, page } = await newPage(browser);
  try {
    await page.goto(link!);
    // Signed out: the page names the invitation and offers to sign in, which comes back here afterwards.
    await expect(page.getByTestId("invitation-summary")).toContainText("“Invited workspace”");
    await page.getByRole("link", { name: "Sign in" }).click();
    await expect(page).toHaveURL(/\/login\/\?next=%2Finvitations%2F/);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(account.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(/\/invitations\/$/); // the token is not in the address any more
    // Not yet: whoever registered an address must prove it before joining anything.
    await page.getByRole("button", { name: "Accept" }).click();
    await expect(page.getByTestId("invitation-error")).toContainText("Confirm your email address first");
    await page.getByRole("button", { name: "Send a new link" }).click();
    await expect(page.getByTestId("resend-outcome")).toHaveText("A new link is on its way: check your mail.");

    const verify = new URL(await mailedLink(email, "/verify-email"));
    await page.goto(`${verify.pathname}${verify.hash}`);
    await expect(page.getByRole("heading", { name: "Email confirmed" })).toBeVisible();

    await page.goto(link!);
    await page.getByRole("button", { name: "Accept" }).click();
    await expect(page.getByRole("heading", { name: "You joined “Invited workspace”" })).toBeVisible();
    await page.getByRole("link", { name: "Open the workspace" }).click();
    await expect(page).toHaveURL(new RegExp(`/workspace/\\?id=${workspaceId}`));

    // Single use: the same link again is refused with a clear message.
    await page.goto(link!);
    await expect(page.getByRole("heading", { name: "This invitation cannot be used" })).toBeVisible();
    await expect(page.getByText(/no longer valid/)).toBeVisible();
    await expect(page.getByRole("button", { name: "Accept" })).toHaveCount(0);
  } finally {
    await context.close();
  }
});
