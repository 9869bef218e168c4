import { expect, test } from "@playwright/test";
import { cardById, realErrors, setup, type Resource } from "./board-support";

/**
 * The whole board page stays live, not only its cards: a rename made elsewhere
 * changes the open board's title, and a member removed while the board is open
 * loses the cards and every way to change them, with a message naming the
 * workspace — each within 3 s, without a reload.
 */

const LIVE_WITHIN = { timeout: 3_000 };

test("a rename elsewhere retitles the open board; a removed member loses the cards and is told which workspace", async ({ browser, request }) => {
  const s = await setup(browser, request, "Garden club");
  try {
    const { a, b } = s;
    const created = await s.rest.call<Resource>("POST", `/workspaces/${s.workspaceId}/resources`, { kind: "task", title: "Order seeds" });
    await expect(cardById(b.page, created.id)).toBeVisible();
    await expect(b.page.getByRole("heading", { name: "Garden club", level: 1 })).toBeVisible();

    // A renames it (over REST, as from another tab): both open boards follow.
    await s.rest.call("PATCH", `/workspaces/${s.workspaceId}`, { name: "Allotment society" });
    await expect(b.page.getByRole("heading", { name: "Allotment society", level: 1 })).toBeVisible(LIVE_WITHIN);
    await expect(a.page.getByRole("heading", { name: "Allotment society", level: 1 })).toBeVisible(LIVE_WITHIN);

    // A removes B: B's board empties and says why.
    const members = await s.rest.call<{ items: { user_id: string; email: string }[] }>("GET", `/workspaces/${s.workspaceId}/members`);
    const ben = members.items.find((m) => m.email === b.account.email)!;
    await s.rest.call("DELETE", `/workspaces/${s.workspaceId}/members/${ben.user_id}`);
    const lost = b.page.getByTestId("board-lost");
    await expect(lost).toContainText("You are no longer a member of “Allotment society”", LIVE_WITHIN);
    await expect(b.page.getByTestId("resource-card")).toHaveCount(0);
    await expect(b.page.getByRole("button", { name: "New card" })).toHaveCount(0);
    await expect(b.page.getByRole("button", { name: /^Edit / })).toHaveCount(0);
    await expect(b.page.getByRole("searchbox")).toHaveCount(0);

    // A keeps the board.
    await expect(cardById(a.page, created.id)).toBeVisible();
    await expect(a.page.getByRole("button", { name: "New card", exact: true })).toBeEnabled();

    expect(realErrors(a.errors)).toEqual([]);
    expect(realErrors(b.errors)).toEqual([]);
  } finally {
    await s.close();
  }
});

test("a workspace id that does not exist shows not-found, not an empty board", async ({ browser, request }) => {
  const s = await setup(browser, request, "Real one");
  try {
    await s.a.page.goto("/workspace/?id=00000000-0000-4000-8000-000000000000");
    await expect(s.a.page.getByRole("heading", { name: "Workspace not found", level: 1 })).toBeVisible();
    await expect(s.a.page.getByText("It does not exist, or you are not a member of it.")).toBeVisible();
    await expect(s.a.page.getByTestId("presence")).toHaveCount(0);
    await expect(s.a.page.getByRole("button", { name: "New card" })).toHaveCount(0);
  } finally {
    await s.close();
  }
});
