import path from "node:path";
import { expect, test } from "@playwright/test";
import { card, cardById, column, dragTo, moveWithKeys, realErrors, setup, SHOTS, type Resource } from "./board-support";

/**
 * The board as a board: cards dragged between columns by mouse and moved by
 * keyboard, reaching the other person live; Undo in the toast after a move and
 * a delete; the Trash with Restore; focus back on the opener when a dialog
 * closes; no developer words on screen.
 */

test("drag and drop by mouse and by keyboard, undo, Trash and restore — live on the other board", async ({ browser, request }) => {
  const s = await setup(browser, request, "Sprint 12");
  try {
    const { a, b } = s;
    const first = await s.rest.call<Resource>("POST", `/workspaces/${s.workspaceId}/resources`, { kind: "task", title: "Write the tests" });
    await s.rest.call<Resource>("POST", `/workspaces/${s.workspaceId}/resources`, { kind: "bug", title: "Fix the login bug", tags: ["auth"] });
    await expect(a.page.getByTestId("resource-card")).toHaveCount(2);
    await expect(b.page.getByTestId("resource-card")).toHaveCount(2);

    // By mouse: open → done.
    await dragTo(a.page, "Write the tests", "done");
    await expect(column(a.page, "done")).toContainText("Write the tests");
    await expect(column(b.page, "done")).toContainText("Write the tests");
    await expect(cardById(b.page, first.id)).toHaveAttribute("data-version", "2");

    // Undo in the toast puts it back, for everyone.
    const moved = a.page.getByTestId("toast").filter({ hasText: "Moved “Write the tests” to Done" });
    await moved.getByRole("button", { name: "Undo" }).click();
    await expect(column(b.page, "open")).toContainText("Write the tests");
    await expect(cardById(b.page, first.id)).toHaveAttribute("data-version", "3");

    // By keyboard: the move handle, Space, one column to the right, Space.
    await moveWithKeys(a.page, "Write the tests", "ArrowRight", 1);
    await expect(column(a.page, "in_progress")).toContainText("Write the tests");
    await expect(column(b.page, "in_progress")).toContainText("Write the tests");
    await expect(a.page.getByRole("button", { name: "Move Write the tests", exact: true })).toBeFocused();

    // Delete, then Undo: back on both boards.
    await card(a.page, "Fix the login bug").getByRole("button", { name: "Delete Fix the login bug" }).click();
    await expect(card(b.page, "Fix the login bug")).toHaveCount(0);
    const trashed = a.page.getByTestId("toast").filter({ hasText: "Moved “Fix the login bug” to the Trash" });
    await trashed.getByRole("button", { name: "Undo" }).click();
    await expect(card(b.page, "Fix the login bug")).toBeVisible();

    // Delete again; restore it from the Trash.
    await card(a.page, "Fix the login bug").getByRole("button", { name: "Delete Fix the login bug" }).click();
    await expect(card(b.page, "Fix the login bug")).toHaveCount(0);
    const trashButton = a.page.getByRole("button", { name: "Trash", exact: true });
    await trashButton.click();
    const trash = a.page.getByRole("dialog", { name: "Trash" });
    await expect(trash.getByTestId("trash-item")).toHaveCount(1);
    await trash.getByRole("button", { name: "Restore Fix the login bug" }).click();
    await expect(trash.getByText("The Trash is empty.")).toBeVisible();
    await expect(card(b.page, "Fix the login bug")).toBeVisible();
    await a.page.keyboard.press("Escape");
    await expect(trash).toBeHidden();
    await expect(trashButton).toBeFocused(); // focus back on the opener
    await expect(card(a.page, "Fix the login bug")).toBeVisible();

    // The edit dialog, opened from a card's button, gives focus back to it.
    const editButton = a.page.getByRole("button", { name: "Edit Write the tests" });
    await editButton.click();
    const dialog = a.page.getByRole("dialog", { name: "Edit card" });
    await expect(dialog.getByLabel("Column")).toHaveValue("in_progress");
    await expect(dialog.getByLabel("Column").locator("option:checked")).toHaveText("In progress");
    await a.page.keyboard.press("Escape");
    await expect(dialog).toBeHidden();
    await expect(editButton).toBeFocused();

    // Words for people: no versions, channel states or "resource" on the board.
    const text = await a.page.locator("main").innerText();
    expect(text).not.toMatch(/\bv\d+\b|subscribed|pending|failed|resource|in_progress/i);
    await a.page.screenshot({ path: path.join(SHOTS, "board-dnd.png"), fullPage: true });

    expect(realErrors(a.errors)).toEqual([]);
    expect(realErrors(b.errors)).toEqual([]);
  } finally {
    await s.close();
  }
});

test("the sign-in page puts the cursor in the email field", async ({ page }) => {
  await page.goto("/login/");
  await expect(page.getByLabel("Email")).toBeFocused();
});

test("the app's scripts and pages come compressed (the build's brotli copies)", async ({ page }) => {
  const encodings = new Map<string, string | undefined>();
  page.on("response", (response) => {
    const url = new URL(response.url());
    if (url.pathname.endsWith(".js") || url.pathname.endsWith("/")) encodings.set(url.pathname, response.headers()["content-encoding"]);
  });
  await page.goto("/login/");
  await expect(page.getByLabel("Email")).toBeVisible();
  const scripts = [...encodings].filter(([p]) => p.endsWith(".js"));
  expect(scripts.length).toBeGreaterThan(3);
  expect(scripts.filter(([, encoding]) => encoding !== "br")).toEqual([]);
  expect(encodings.get("/login/")).toBe("br");
});
