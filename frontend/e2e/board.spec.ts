import path from "node:path";
import { expect, test } from "@playwright/test";
import { card, cardById, column, expectSamePage, markPage, moveWithKeys, realErrors, setup, SHOTS, type Resource } from "./board-support";
import { expectLive } from "./support";

/**
 * The board against the real system: two people (two browser contexts) on
 * one workspace's board, seeing each other's changes over `workspace:<id>`
 * without reloading — also after one of them was offline — and a conflict
 * between two edits made from the same version.
 */

test("two people on one board: a resource created by A shows up on B's board, B's move shows up on A's", async ({ browser, request }) => {
  const s = await setup(browser, request, "Launch plan");
  try {
    const { a, b } = s;
    // Both present: each header shows two people.
    await expect(a.page.getByTestId("presence")).toHaveAttribute("data-count", "2");
    await expect(b.page.getByTestId("presence")).toHaveAttribute("data-count", "2");
    await expect(a.page.getByRole("heading", { name: "Launch plan", level: 1 })).toBeVisible();
    await expect(a.page.getByText("No cards yet")).toBeVisible();

    // A creates one through the dialog.
    await a.page.getByRole("button", { name: "New card", exact: true }).click();
    const dialog = a.page.getByRole("dialog", { name: "New card" });
    await expect(dialog).toBeVisible();
    await dialog.getByLabel("Title").fill("Write the launch post");
    await dialog.getByLabel("Tags").fill("launch, blog");
    await dialog.getByLabel("Description").fill("Draft, review, publish.");
    await dialog.getByRole("button", { name: "Create" }).click();
    await expect(dialog).toBeHidden();
    await expect(card(a.page, "Write the launch post")).toBeVisible();
    await expect(column(a.page, "open").getByTestId("resource-card")).toHaveCount(1);

    // B sees it without reloading.
    await markPage(b.page);
    await markPage(a.page);
    const onB = card(b.page, "Write the launch post");
    await expect(onB).toBeVisible();
    await expect(column(b.page, "open")).toContainText("Write the launch post");
    await expect(onB).toContainText("#launch");

    // B moves it; A sees it change column.
    await moveWithKeys(b.page, "Write the launch post", "ArrowRight", 1);
    await expect(column(b.page, "in_progress")).toContainText("Write the launch post");
    await expect(column(a.page, "in_progress")).toContainText("Write the launch post");
    await expect(column(a.page, "open").getByTestId("resource-card")).toHaveCount(0);
    await expect(card(a.page, "Write the launch post")).toHaveAttribute("data-version", "2");
    await expectSamePage(a.page);
    await expectSamePage(b.page);

    // Validation on the client (Zod) before any request; the hub's 422s on their fields are unit-tested.
    await a.page.getByRole("button", { name: "New card", exact: true }).click();
    await dialog.getByLabel("Title").fill("   ");
    await dialog.getByRole("button", { name: "Create" }).click();
    await expect(dialog.getByText("Enter a title", { exact: true })).toBeVisible(); // client-side first
    await dialog.getByLabel("Title").fill("Fix the signup bug");
    await dialog.getByLabel("Type").selectOption("bug");
    await dialog.getByLabel("Column").selectOption({ label: "In progress" });
    await dialog.getByLabel("Tags").fill("bug");
    await dialog.getByRole("button", { name: "Create" }).click();
    await expect(dialog).toBeHidden();

    // A few more for the screenshots, over REST (they arrive as events).
    for (const [title, status, tags, body] of [
      ["Book the venue", "done", ["events"], "Confirmed for the 14th."],
      ["Press kit", "open", ["launch", "design"], "Logos, screenshots, one-pager."],
      ["Pricing page copy", "open", ["web"], ""],
      ["Triage feedback", "blocked", ["support"], "Waiting on the survey export."],
    ] as const) {
      await s.rest.call("POST", `/workspaces/${s.workspaceId}/resources`, { kind: "task", title, status, tags: [...tags], body });
    }
    await expect(b.page.getByTestId("resource-card")).toHaveCount(6);
    await expect(column(b.page, "blocked")).toContainText("Triage feedback");

    // Search (the hub's full text) and a tag filter.
    await a.page.getByRole("searchbox", { name: "Search" }).fill("launch");
    await expect(a.page.getByTestId("resource-card")).toHaveCount(1);
    await a.page.getByRole("searchbox", { name: "Search" }).fill("");
    await expect(a.page.getByTestId("resource-card")).toHaveCount(6);
    await a.page.getByLabel("Tag", { exact: true }).selectOption("launch");
    await expect(a.page.getByTestId("resource-card")).toHaveCount(2);
    await a.page.getByLabel("Tag", { exact: true }).selectOption("");
    await a.page.getByLabel("Sort").selectOption("title:asc");
    await expect(column(a.page, "open").getByTestId("resource-card").first()).toContainText("Press kit");
    await expect(a.page.getByTestId("resource-card")).toHaveCount(6);

    await a.page.emulateMedia({ colorScheme: "light" });
    await expect(a.page.locator("html")).not.toHaveClass(/dark/);
    await a.page.screenshot({ path: path.join(SHOTS, "board-light.png"), fullPage: true });
    await a.page.getByTestId("theme-toggle").click();
    await expect(a.page.locator("html")).toHaveClass(/dark/);
    await a.page.screenshot({ path: path.join(SHOTS, "board-dark.png"), fullPage: true });
    await a.page.getByTestId("theme-toggle").click();
    await expect(a.page.locator("html")).not.toHaveClass(/dark/);
    // Narrow screen: one column after another, the toolbar stacked.
    await a.page.setViewportSize({ width: 390, height: 844 });
    await expect(column(a.page, "open")).toBeVisible();
    // The filter menus fold behind "Filters", so the first card is on the first screen.
    await expect(a.page.getByLabel("Tag", { exact: true })).toBeHidden();
    await expect(column(a.page, "open").getByTestId("resource-card").first()).toBeInViewport();
    await a.page.getByRole("button", { name: "Filters" }).click();
    await expect(a.page.getByLabel("Tag", { exact: true })).toBeVisible();
    await a.page.getByRole("button", { name: "Filters" }).click();
    await a.page.screenshot({ path: path.join(SHOTS, "board-mobile.png"), fullPage: true });

    expect(realErrors(a.errors)).toEqual([]);
    expect(realErrors(b.errors)).toEqual([]);
  } finally {
    await s.close();
  }
});

test("B goes offline, A makes three edits, B comes back online and shows all three without reloading", async ({ browser, request }) => {
  const s = await setup(browser, request, "Offline check");
  try {
    const { a, b } = s;
    const created = await s.rest.call<Resource>("POST", `/workspaces/${s.workspaceId}/resources`, { kind: "task", title: "Plan the offsite" });
    await expect(cardById(b.page, created.id)).toBeVisible();
    await expect(cardById(a.page, created.id)).toBeVisible();

    await markPage(b.page);
    await b.context.setOffline(true);
    await expect(b.page.getByTestId("connection-state")).toHaveAttribute("data-state", "offline");

    // Edit 1: rename through the dialog.
    await cardById(a.page, created.id).getByRole("button", { name: "Edit Plan the offsite" }).click();
    const dialog = a.page.getByRole("dialog", { name: "Edit card" });
    await dialog.getByLabel("Title").fill("Plan the team offsite");
    await dialog.getByRole("button", { name: "Save" }).click();
    await expect(dialog).toBeHidden();
    await expect(cardById(a.page, created.id)).toHaveAttribute("data-version", "2");
    // Edits 2 and 3: move it twice.
    await moveWithKeys(a.page, "Plan the team offsite", "ArrowRight", 1);
    await expect(cardById(a.page, created.id)).toHaveAttribute("data-version", "3");
    await moveWithKeys(a.page, "Plan the team offsite", "ArrowRight", 1);
    await expect(cardById(a.page, created.id)).toHaveAttribute("data-version", "4");
    await expect(column(a.page, "done")).toContainText("Plan the team offsite");

    // B still shows the old state while offline.
    await expect(cardById(b.page, created.id)).toHaveAttribute("data-version", "1");
    await expect(column(b.page, "open")).toContainText("Plan the offsite");

    await b.context.setOffline(false);
    await expectLive(b.page);
    const onB = cardById(b.page, created.id);
    await expect(onB).toHaveAttribute("data-version", "4");
    await expect(onB).toHaveAttribute("data-status", "done");
    await expect(column(b.page, "done")).toContainText("Plan the team offsite");
    await expect(column(b.page, "open").getByTestId("resource-card")).toHaveCount(0);
    await expectSamePage(b.page); // caught up live, not by reloading

    expect(realErrors(a.errors)).toEqual([]);
  } finally {
    await s.close();
  }
});

test("a conflict: two edits from the same version; the loser sees the newer version and can overwrite it", async ({ browser, request }) => {
  const s = await setup(browser, request, "Conflicts");
  try {
    const { a, b } = s;
    const created = await s.rest.call<Resource>("POST", `/workspaces/${s.workspaceId}/resources`, { kind: "task", title: "Agree on a name" });
    await expect(cardById(a.page, created.id)).toBeVisible();
    await expect(cardById(b.page, created.id)).toBeVisible();

    // Both open the editor at version 1.
    await cardById(a.page, created.id).getByRole("button", { name: "Edit Agree on a name" }).click();
    await cardById(b.page, created.id).getByRole("button", { name: "Edit Agree on a name" }).click();
    const dialogA = a.page.getByRole("dialog", { name: "Edit card" });
    const dialogB = b.page.getByRole("dialog", { name: "Edit card" });
    await dialogA.getByLabel("Title").fill("Name: Hubbub");
    await dialogB.getByLabel("Title").fill("Name: Chatterbox");

    // B saves first and wins.
    await dialogB.getByRole("button", { name: "Save" }).click();
    await expect(dialogB).toBeHidden();
    await expect(cardById(a.page, created.id)).toHaveAttribute("data-version", "2");

    // A's save is refused (412): the dialog shows B's version and keeps A's text.
    await dialogA.getByRole("button", { name: "Save" }).click();
    const conflict = dialogA.getByTestId("conflict");
    await expect(conflict).toBeVisible();
    await expect(conflict.getByTestId("conflict-current-title")).toHaveText("“Name: Chatterbox”");
    await expect(dialogA.getByLabel("Title")).toHaveValue("Name: Hubbub");
    await a.page.screenshot({ path: path.join(SHOTS, "board-conflict.png") });

    // A retries on top of B's version.
    await dialogA.getByRole("button", { name: "Overwrite with mine" }).click();
    await expect(dialogA).toBeHidden();
    await expect(cardById(a.page, created.id)).toHaveAttribute("data-version", "3");
    await expect(cardById(b.page, created.id)).toHaveAttribute("data-version", "3");
    await expect(cardById(b.page, created.id)).toContainText("Name: Hubbub");

    expect(realErrors(a.errors)).toEqual([]);
    expect(realErrors(b.errors)).toEqual([]);
  } finally {
    await s.close();
  }
});

test("resource detail: live updates, soft delete and restore reach the other board", async ({ browser, request }) => {
  const s = await setup(browser, request, "Details");
  try {
    const { a, b } = s;
    const created = await s.rest.call<Resource>("POST", `/workspaces/${s.workspaceId}/resources`, {
      kind: "bug",
      title: "Crash on empty title",
      body: "Steps: open the dialog, clear the title, save.",
      tags: ["bug", "p1"],
    });
    await cardById(a.page, created.id).getByRole("link", { name: "Crash on empty title" }).click();
    await expect(a.page).toHaveURL(new RegExp(`/workspace/resource/\\?ws=${s.workspaceId}&id=${created.id}$`));
    await expect(a.page.getByRole("heading", { name: "Crash on empty title", level: 1 })).toBeVisible();
    await expect(a.page.getByTestId("resource-detail")).toHaveAttribute("data-version", "1");

    // B moves it on the board: the detail page follows.
    await expect(cardById(b.page, created.id)).toBeVisible();
    await moveWithKeys(b.page, "Crash on empty title", "ArrowRight", 1);
    await expect(a.page.getByTestId("detail-status")).toHaveText("In progress");
    await a.page.screenshot({ path: path.join(SHOTS, "resource-detail.png"), fullPage: true });

    // Soft delete: gone from B's board; restore: back.
    await a.page.getByRole("button", { name: "Delete" }).click();
    await a.page.getByRole("alertdialog").getByRole("button", { name: "Delete" }).click();
    await expect(a.page.getByText(/^Deleted /)).toBeVisible();
    await expect(cardById(b.page, created.id)).toHaveCount(0);
    await a.page.getByRole("button", { name: "Restore" }).click();
    await expect(a.page.getByRole("button", { name: "Delete" })).toBeVisible();
    await expect(cardById(b.page, created.id)).toBeVisible();
    await expect(cardById(b.page, created.id)).toHaveAttribute("data-status", "in_progress");

    expect(realErrors(a.errors)).toEqual([]);
    expect(realErrors(b.errors)).toEqual([]);
  } finally {
    await s.close();
  }
});
