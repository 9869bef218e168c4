import path from "node:path";
import { expect, test } from "@playwright/test";
import { cardById, column, expectSamePage, markPage, moveWithKeys, realErrors, setup, SHOTS, type Resource } from "./board-support";
import { expectLive } from "./support";

/**
 * Edits made offline survive: board changes are RPCs through the realtime
 * client's outbox, so a change made while the browser is offline shows at once
 * (marked as not sent yet), is sent when the connection is back — without the
 * user doing it again, and applied once — and then reaches the other person.
 */

test("A moves, renames and creates while offline; after reconnecting all of it is applied once and B sees it", async ({ browser, request }) => {
  const s = await setup(browser, request, "Offline edits");
  try {
    const { a, b } = s;
    const created = await s.rest.call<Resource>("POST", `/workspaces/${s.workspaceId}/resources`, { kind: "task", title: "Pack the tent" });
    const onA = cardById(a.page, created.id);
    const onB = cardById(b.page, created.id);
    await expect(onA).toBeVisible();
    await expect(onB).toBeVisible();
    await markPage(a.page);
    await markPage(b.page);

    await a.context.setOffline(true);
    await expect(a.page.getByTestId("connection-state")).toHaveAttribute("data-state", "offline");
    const banner = a.page.getByTestId("offline-banner");
    await expect(banner).toContainText("You are offline.");
    await expect(banner).toContainText("Changes you make are kept and sent when the connection is back.");

    // A move and a rename on one card, one on top of the other, and a new card.
    await moveWithKeys(a.page, "Pack the tent", "ArrowRight", 1);
    await expect(column(a.page, "in_progress")).toContainText("Pack the tent");
    await onA.getByRole("button", { name: "Edit Pack the tent" }).click();
    const edit = a.page.getByRole("dialog", { name: "Edit card" });
    await edit.getByLabel("Title").fill("Pack the big tent");
    await edit.getByRole("button", { name: "Save" }).click();
    await expect(edit).toBeHidden();
    await expect(onA).toContainText("Pack the big tent");
    await expect(onA).toHaveAttribute("data-pending", "true");
    await expect(onA.getByTestId("card-pending")).toHaveText("Not sent yet");

    await a.page.getByRole("button", { name: "New card", exact: true }).click();
    const create = a.page.getByRole("dialog", { name: "New card" });
    await create.getByLabel("Title").fill("Buy marshmallows");
    await create.getByRole("button", { name: "Create" }).click();
    await expect(create).toBeHidden();
    const draft = a.page.getByTestId("resource-card").filter({ hasText: "Buy marshmallows" });
    await expect(draft).toHaveAttribute("data-pending", "true");
    await a.page.screenshot({ path: path.join(SHOTS, "board-offline.png"), fullPage: true });

    // Nothing left A's browser: B still sees the old card and no new one.
    await expect(onB).toHaveAttribute("data-version", "1");
    await expect(column(b.page, "open")).toContainText("Pack the tent");
    await expect(b.page.getByTestId("resource-card")).toHaveCount(1);

    // Back online: the outbox sends all three by itself.
    await a.context.setOffline(false);
    await expectLive(a.page);
    await expect(banner).toHaveAttribute("data-visible", "false");
    await expect(onA).not.toHaveAttribute("data-pending", "true");
    await expect(onA).toHaveAttribute("data-version", "3"); // two changes, each applied once
    await expect(onA).toHaveAttribute("data-status", "in_progress");
    await expect(draft).not.toHaveAttribute("data-pending", "true");

    await expect(onB).toHaveAttribute("data-version", "3");
    await expect(onB).toContainText("Pack the big tent");
    await expect(column(b.page, "in_progress")).toContainText("Pack the big tent");
    await expect(column(b.page, "open")).toContainText("Buy marshmallows");
    await expect(b.page.getByTestId("resource-card")).toHaveCount(2);
    await expect(a.page.getByTestId("resource-card")).toHaveCount(2);

    // The server holds exactly what was meant: one new card, the other at version 3.
    const page = await s.rest.call<{ items: Resource[] }>("GET", `/workspaces/${s.workspaceId}/resources?limit=100`);
    expect(page.items.map((r) => `${r.title} v${r.version} ${r.status}`).sort()).toEqual([
      "Buy marshmallows v1 open",
      "Pack the big tent v3 in_progress",
    ]);
    await expectSamePage(a.page); // no reload, nothing repeated by hand
    await expectSamePage(b.page);

    expect(realErrors(a.errors)).toEqual([]);
    expect(realErrors(b.errors)).toEqual([]);
  } finally {
    await s.close();
  }
});
