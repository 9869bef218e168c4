import path from "node:path";
import { expect, test } from "@playwright/test";
import { card, column, dragOnto, heard, keyMove, openBoard, realErrors, setup, SHOTS, titlesIn, type Resource } from "./board-support";

/**
 * Order within a column, kept on the server: cards put in order by mouse and
 * by keyboard (within a column and at a place in another one), seen in that
 * order by the other person live and after a reload; quick add at the end of
 * a column.
 */

test("order within a column: by mouse and by keyboard, live on the other board and kept after a reload", async ({ browser, request }) => {
  const s = await setup(browser, request, "Ordering");
  try {
    const { a, b } = s;
    for (const title of ["One", "Two", "Three"]) {
      await s.rest.call<Resource>("POST", `/workspaces/${s.workspaceId}/resources`, { kind: "task", title });
    }
    // A new card goes to the end of its column.
    await expect.poll(() => titlesIn(a.page, "open")).toEqual(["One", "Two", "Three"]);
    await expect.poll(() => titlesIn(b.page, "open")).toEqual(["One", "Two", "Three"]);

    // By mouse within the column: Three onto One's place.
    await dragOnto(a.page, "Three", "One", "onto");
    await expect.poll(() => titlesIn(a.page, "open")).toEqual(["Three", "One", "Two"]);
    await expect.poll(() => titlesIn(b.page, "open")).toEqual(["Three", "One", "Two"]);

    // By keyboard within the column: One down by one, announced with its place.
    const dropped = await keyMove(a.page, "One", ["ArrowDown"]);
    expect(dropped).toBe("“One” was dropped in Open, position 3 of 3.");
    await expect.poll(() => titlesIn(a.page, "open")).toEqual(["Three", "Two", "One"]);
    await expect.poll(() => titlesIn(b.page, "open")).toEqual(["Three", "Two", "One"]);
    await expect(a.page.getByRole("button", { name: "Move One", exact: true })).toBeFocused();

    // By keyboard to a place in another column: Two → In progress; Three → In progress, below Two.
    await keyMove(a.page, "Two", ["ArrowRight"]);
    await expect(heard(a.page)).toHaveText("“Two” was dropped in In progress, position 1 of 1.");
    expect(await keyMove(a.page, "Three", ["ArrowRight", "ArrowDown"])).toBe("“Three” was dropped in In progress, position 2 of 2.");
    await expect.poll(() => titlesIn(a.page, "in_progress")).toEqual(["Two", "Three"]);

    // Escape puts a picked-up card back.
    await a.page.getByRole("button", { name: "Move Two", exact: true }).focus();
    await a.page.keyboard.press("Space");
    // Picked up (as keyMove waits for): an arrow pressed before it is lost.
    await expect(heard(a.page)).toHaveText("“Two” is in In progress, position 1 of 2.");
    await a.page.keyboard.press("ArrowDown");
    await expect(heard(a.page)).toHaveText("“Two” is in In progress, position 2 of 2.");
    await a.page.keyboard.press("Escape");
    await expect(heard(a.page)).toHaveText("Moving “Two” was cancelled; it stays where it was.");

    // By mouse to a place in another column: One between Two and Three.
    await dragOnto(a.page, "One", "Three", "above", async () => {
      // While held, a line in the other column shows where it will go: above Three.
      const line = column(a.page, "in_progress").getByTestId("drop-line");
      await expect(line).toHaveCount(1);
      // Polled: the cards slide into their places for a moment after the line appears.
      await expect
        .poll(async () => {
          const [lineBox, threeBox] = [await line.boundingBox(), await card(a.page, "Three").boundingBox()];
          return lineBox && threeBox ? Math.abs(lineBox.y - threeBox.y) : Infinity;
        })
        .toBeLessThan(12);
      await a.page.screenshot({ path: path.join(SHOTS, "board-drag.png") });
    });
    await expect.poll(() => titlesIn(a.page, "in_progress")).toEqual(["Two", "One", "Three"]);
    await expect(column(a.page, "open").getByTestId("resource-card")).toHaveCount(0);

    // B saw all of it live …
    await expect.poll(() => titlesIn(b.page, "in_progress")).toEqual(["Two", "One", "Three"]);
    await expect(column(b.page, "open").getByTestId("resource-card")).toHaveCount(0);
    // … and the server keeps it: a reload shows the same order, and so does the API.
    await openBoard(b.page, s.workspaceId);
    await expect.poll(() => titlesIn(b.page, "in_progress")).toEqual(["Two", "One", "Three"]);
    const listed = await s.rest.call<{ items: (Resource & { position: string })[] }>(
      "GET",
      `/workspaces/${s.workspaceId}/resources?status=in_progress`,
    );
    expect(listed.items.map((r) => r.title)).toEqual(["Two", "One", "Three"]);

    // B reorders too; A follows live.
    await keyMove(b.page, "Three", ["ArrowUp", "ArrowUp"]);
    await expect.poll(() => titlesIn(b.page, "in_progress")).toEqual(["Three", "Two", "One"]);
    await expect.poll(() => titlesIn(a.page, "in_progress")).toEqual(["Three", "Two", "One"]);

    await a.page.screenshot({ path: path.join(SHOTS, "board-order.png"), fullPage: true });
    expect(realErrors(a.errors)).toEqual([]);
    expect(realErrors(b.errors)).toEqual([]);
  } finally {
    await s.close();
  }
});

test("quick add: a card typed at the foot of a column lands at its end, for both people", async ({ browser, request }) => {
  const s = await setup(browser, request, "Quick add");
  try {
    const { a, b } = s;
    await s.rest.call<Resource>("POST", `/workspaces/${s.workspaceId}/resources`, { kind: "task", title: "Existing", status: "done" });
    await expect(card(a.page, "Existing")).toBeVisible();

    const opener = a.page.getByRole("button", { name: "Add a card to Done" });
    await opener.click();
    const field = a.page.getByRole("textbox", { name: "Title of a new card in Done" });
    await expect(field).toBeFocused();
    await field.fill("   ");
    await field.press("Enter");
    await expect(column(a.page, "done").getByRole("alert")).toHaveText("Enter a title");
    await field.fill("Ship it");
    await field.press("Enter");
    // The field stays open for the next one.
    await expect(field).toHaveValue("");
    await field.fill("Celebrate");
    await field.press("Enter");
    await expect.poll(() => titlesIn(a.page, "done")).toEqual(["Existing", "Ship it", "Celebrate"]);
    await expect.poll(() => titlesIn(b.page, "done")).toEqual(["Existing", "Ship it", "Celebrate"]);
    await expect(card(b.page, "Celebrate")).toHaveAttribute("data-status", "done");

    // Escape closes it; focus goes back to the button that opened it.
    await field.press("Escape");
    await expect(field).toBeHidden();
    await expect(opener).toBeFocused();

    // Sorted by something else than the board's order, a card only changes column (to the end of the other one's order).
    await a.page.getByLabel("Sort").selectOption("title:asc");
    await expect.poll(() => titlesIn(a.page, "done")).toEqual(["Celebrate", "Existing", "Ship it"]);
    expect(await keyMove(a.page, "Ship it", ["ArrowLeft"])).toBe("“Ship it” was dropped in In progress.");
    await expect.poll(() => titlesIn(b.page, "in_progress")).toEqual(["Ship it"]);
    await expect.poll(() => titlesIn(b.page, "done")).toEqual(["Existing", "Celebrate"]);

    expect(realErrors(a.errors)).toEqual([]);
    expect(realErrors(b.errors)).toEqual([]);
  } finally {
    await s.close();
  }
});
