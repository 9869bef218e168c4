import path from "node:path";
import { expect, test } from "@playwright/test";
import { RESULTS_DIR, mailedLink } from "./hubbub";
import { collectErrors, expectLive, newPage, registerViaApi, restAs, signIn, uniqueEmail } from "./support";

/**
 * Issue 16, item 1: an invited new user must not lose the invitation. Two people in two
 * browser contexts: the owner invites an address that has no account; the invitee
 * opens the mailed link signed out and sees what it is for (workspace, who invited,
 * the address), goes to sign in, has no account → "Create one" → registers → confirms
 * the address from the mail → signs in again (a new browser session) → is back at the
 * invitation → accepts → sees the workspace's board; the owner's members page shows
 * the new member live. No step loses the invitation.
 */
test("an invited new user: link signed out → sign-in → Create one → register → confirm → sign in → back at the invitation → member, on the board", async ({
  browser,
  request,
}) => {
  const owner = await registerViaApi(request, "inviter");
  const rest = restAs(request, owner);
  const workspaceName = `Launch ${Date.now().toString(36)}`;
  const workspace = await rest.call<{ id: string }>("POST", "/workspaces", { name: workspaceName });
  await rest.call("POST", `/workspaces/${workspace.id}/resources`, { title: "Kick-off agenda", kind: "task", status: "open" });

  const a = await newPage(browser);
  const b = await newPage(browser);
  const errorsA = collectErrors(a.page);
  const errorsB = collectErrors(b.page);
  const email = uniqueEmail("newbie");
  const password = "a new member's password 6230";
  try {
    // The owner invites an address without an account, on the members page.
    await signIn(a.page, owner);
    await a.page.goto(`/workspace/members/?id=${workspace.id}`);
    await expectLive(a.page);
    const add = a.page.getByRole("form", { name: "Add a member" });
    await add.getByLabel("Email").fill(email);
    await add.getByLabel("Role").selectOption("member");
    await add.getByRole("button", { name: "Add member" }).click();
    await expect(add.getByTestId("add-outcome")).toHaveAttribute("data-outcome", "invited");
    await expect(a.page.locator(`[data-testid="invitation-row"][data-email="${email}"]`)).toBeVisible();

    // The invitee opens the mailed link, signed out: the page says what it is for.
    const link = new URL(await mailedLink(email, "/invitations"));
    await b.page.goto(`${link.pathname}${link.hash}`);
    await expect(b.page).toHaveURL(/\/invitations\/$/); // the token left the address (it waits in this tab)
    const summary = b.page.getByTestId("invitation-summary");
    await expect(summary).toHaveText(`${owner.name} invited you to join “${workspaceName}” as a member.`);
    await expect(b.page.getByTestId("invitation")).toContainText(`The invitation is for ${email}`);
    await expect(b.page.getByRole("heading", { name: `Join “${workspaceName}”` })).toBeVisible();
    await b.page.screenshot({ path: path.join(RESULTS_DIR, "screenshots", "invitation-signed-out.png"), fullPage: true });

    // Sign in → no account → "Create one": `next` is kept at every step.
    await b.page.getByRole("link", { name: "Sign in" }).click();
    await expect(b.page).toHaveURL(/\/login\/\?next=%2Finvitations%2F$/);
    await b.page.getByRole("link", { name: "Create one" }).click();
    await expect(b.page).toHaveURL(/\/register\/\?next=%2Finvitations%2F$/);
    await b.page.getByLabel("Name").fill("Nia Newbie");
    await b.page.getByLabel("Email").fill(email);
    await b.page.getByLabel("Password", { exact: true }).fill(password);
    await b.page.getByLabel("Repeat password").fill(password);
    await b.page.getByRole("button", { name: "Create account" }).click();
    await expect(b.page.getByRole("heading", { name: "Confirm your email" })).toBeVisible();
    await expect(b.page.getByRole("link", { name: "Continue" })).toHaveAttribute("href", /^\/invitations\/?$/);

    // The confirmation link from the mail, in the same tab: it leads back to the invitation.
    const verify = new URL(await mailedLink(email, "/verify-email"));
    await b.page.goto(`${verify.pathname}${verify.hash}`);
    await expect(b.page.getByRole("heading", { name: "Email confirmed" })).toBeVisible();

    // The browser session ends meanwhile (the refresh cookie is gone): signing in again
    // must still come back to the invitation.
    await b.context.clearCookies();
    await b.page.getByRole("link", { name: "Back to your invitation" }).click();
    await expect(summary).toContainText(`“${workspaceName}”`);
    await b.page.getByRole("link", { name: "Sign in" }).click();
    await expect(b.page).toHaveURL(/\/login\/\?next=%2Finvitations%2F$/);
    await b.page.getByLabel("Email").fill(email);
    await b.page.getByLabel("Password", { exact: true }).fill(password);
    await b.page.getByRole("button", { name: "Sign in" }).click();
    await expect(b.page).toHaveURL(/\/invitations\/$/);
    await expect(summary).toHaveText(`${owner.name} invited you to join “${workspaceName}” as a member.`);
    await expect(b.page.getByTestId("invitation-verify")).toHaveCount(0); // confirmed: nothing to ask

    await b.page.getByRole("button", { name: "Accept" }).click();
    await expect(b.page.getByRole("heading", { name: `You joined “${workspaceName}”` })).toBeVisible();
    await b.page.getByRole("link", { name: "Open the workspace" }).click();
    await expect(b.page).toHaveURL(new RegExp(`/workspace/\\?id=${workspace.id}`));
    await expect(b.page.getByRole("heading", { name: workspaceName, level: 1 })).toBeVisible();
    await expect(b.page.getByTestId("board")).toHaveAttribute("data-channel", "subscribed");
    await expect(b.page.getByRole("link", { name: "Kick-off agenda", exact: true })).toBeVisible();

    // The owner's open members page hears it: a member now, no longer pending.
    await expect(a.page.locator(`[data-testid="member-row"][data-email="${email}"]`)).toHaveAttribute("data-role", "member");
    await expect(a.page.locator(`[data-testid="invitation-row"][data-email="${email}"]`)).toHaveCount(0);

    // The link is single-use: opened again it says so, without buttons to press.
    await b.page.goto(`${link.pathname}${link.hash}`);
    await expect(b.page.getByRole("heading", { name: "This invitation cannot be used" })).toBeVisible();
    await expect(b.page.getByRole("button", { name: "Accept" })).toHaveCount(0);

    expect(errorsA).toEqual([]);
    expect(errorsB).toEqual([]);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

test("a signed-in user with a waiting invitation: the workspaces page names it and links back; a bad link reads one neutral message", async ({
  browser,
  request,
}) => {
  const owner = await registerViaApi(request, "host");
  const guest = await registerViaApi(request, "guest");
  const rest = restAs(request, owner);
  const workspaceName = `Ops ${Date.now().toString(36)}`;
  const workspace = await rest.call<{ id: string }>("POST", "/workspaces", { name: workspaceName });
  await rest.call("POST", `/workspaces/${workspace.id}/invitations`, { email: guest.email, role: "viewer" });

  const { context, page } = await newPage(browser);
  const errors = collectErrors(page);
  try {
    await signIn(page, guest);
    const link = new URL(await mailedLink(guest.email, "/invitations"));
    await page.goto(`${link.pathname}${link.hash}`);
    await expect(page.getByTestId("invitation-summary")).toHaveText(`${owner.name} invited you to join “${workspaceName}” as a viewer.`);
    // Not confirmed yet: the page says so before anything is pressed, and offers a new link.
    await expect(page.getByTestId("invitation-verify")).toContainText("Confirm your email address first");
    await expect(page.getByRole("button", { name: "Send a new link" })).toBeVisible();

    // Elsewhere in the app, the invitation this tab holds is not forgotten.
    await page.goto("/workspaces/");
    const banner = page.getByTestId("pending-invitation");
    await expect(banner).toContainText(`${owner.name} invited you to “${workspaceName}”`);
    await banner.getByRole("link", { name: "Open the invitation" }).click();
    await expect(page).toHaveURL(/\/invitations\/$/);
    await expect(page.getByTestId("invitation-summary")).toContainText(workspaceName);

    // A token that is not (or no longer) an invitation: one neutral message, no details.
    await page.goto(`/invitations/#token=${"x".repeat(43)}`);
    await expect(page.getByRole("heading", { name: "This invitation cannot be used" })).toBeVisible();
    await expect(page.getByText(/no longer valid/)).toBeVisible();
    await page.goto("/workspaces/");
    await expect(page.getByRole("heading", { name: "Workspaces", level: 1 })).toBeVisible();
    await expect(page.getByTestId("pending-invitation")).toHaveCount(0); // forgotten with the 404
    expect(errors).toEqual([]);
  } finally {
    await context.close();
  }
});

test("the confirmation link opens in a new tab (no invitation in its storage): the page names the invitation to the confirmed address, the workspaces page lists it, and Accept joins", async ({
  browser,
  request,
}) => {
  const owner = await registerViaApi(request, "inviter");
  const rest = restAs(request, owner);
  const workspaceName = `Studio ${Date.now().toString(36)}`;
  const workspace = await rest.call<{ id: string }>("POST", "/workspaces", { name: workspaceName });
  const email = uniqueEmail("newtab");
  const password = "a new member's password 7714";
  await rest.call("POST", `/workspaces/${workspace.id}/invitations`, { email, role: "member" });

  const { context, page } = await newPage(browser);
  const errors = collectErrors(page);
  try {
    const link = new URL(await mailedLink(email, "/invitations"));
    await page.goto(`${link.pathname}${link.hash}`);
    await page.getByRole("link", { name: "Create an account" }).click();
    await expect(page).toHaveURL(/\/register\/\?next=%2Finvitations%2F$/);
    await page.getByLabel("Name").fill("Tab Opener");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(password);
    await page.getByLabel("Repeat password").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page.getByRole("heading", { name: "Confirm your email" })).toBeVisible();

    // The mail client opens the confirmation link in a new tab: its sessionStorage is empty.
    const tab = await context.newPage();
    const tabErrors = collectErrors(tab);
    const verify = new URL(await mailedLink(email, "/verify-email"));
    await tab.goto(`${verify.pathname}${verify.hash}`);
    await expect(tab.getByRole("heading", { name: "Email confirmed" })).toBeVisible();
    await expect(tab.getByRole("link", { name: "Back to your invitation" })).toHaveCount(0);
    // …but it asks which invitations wait for the confirmed address, and says where to answer them.
    await expect(tab.getByTestId("pending-invitations")).toHaveText(
      `${owner.name} invited you to join “${workspaceName}”: accept or decline it on your workspaces page.`,
    );
    await tab.getByRole("link", { name: "Your workspaces" }).click();
    await expect(tab).toHaveURL(/\/workspaces\/$/);
    const invitation = tab.getByTestId("my-invitation");
    await expect(invitation).toHaveText(new RegExp(`${owner.name} invited you to join “${workspaceName}” as a member\\.`));
    await invitation.getByRole("button", { name: `Accept the invitation to ${workspaceName}` }).click();
    await expect(invitation).toContainText(`You joined “${workspaceName}”.`);
    // The list hears member.added on the user's channel.
    await expect(tab.locator(`[data-testid="workspace-row"][data-workspace-id="${workspace.id}"]`)).toBeVisible();
    await invitation.getByRole("link", { name: "Open the board" }).click();
    await expect(tab.getByRole("heading", { name: workspaceName, level: 1 })).toBeVisible();
    await expect(tab.getByTestId("board")).toHaveAttribute("data-channel", "subscribed");

    // The first tab's invitation is answered: it says so instead of offering Accept.
    await page.goto("/invitations/");
    await expect(page.getByRole("heading", { name: "This invitation cannot be used" })).toBeVisible();
    expect(errors).toEqual([]);
    expect(tabErrors).toEqual([]);
  } finally {
    await context.close();
  }
});
