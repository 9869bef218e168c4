import path from "node:path";
import { expect, type APIRequestContext, type Browser, type BrowserContext, type Page } from "@playwright/test";
import { mailedToken, RESULTS_DIR } from "./hubbub";
import { collectErrors, expectLive, newPage, registerViaApi, restAs, signIn, type Account } from "./support";

/** Shared by the board specs: two people (two browser contexts) on one workspace's board. */

export const SHOTS = path.join(RESULTS_DIR, "screenshots");

/** A mark on the page's window: a reload or navigation would lose it. */
export async function markPage(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { __hubbubMark?: boolean }).__hubbubMark = true;
  });
}

export async function expectSamePage(page: Page): Promise<void> {
  expect(await page.evaluate(() => (window as unknown as { __hubbubMark?: boolean }).__hubbubMark === true)).toBe(true);
}

/**
 * `account` becomes a member of the workspace the way people do: its owner
 * invites it, it confirms its address and accepts the mailed invitation (over REST).
 */
export async function joinAsMember(
  request: APIRequestContext,
  owner: ReturnType<typeof restAs>,
  workspaceId: string,
  account: Account,
): Promise<void> {
  const added = await owner.call<{ status: string }>("POST", `/workspaces/${workspaceId}/members`, { email: account.email, role: "member" });
  expect(added.status).toBe("invited");
  const verified = await request.post("/api/v1/auth/verify-email", { data: { token: await mailedToken(account.email, "/verify-email") } });
  expect(verified.status(), await verified.text()).toBe(204);
  await restAs(request, account).call("POST", "/invitations/accept", { token: await mailedToken(account.email, "/invitations") });
}

export interface Resource {
  id: string;
  title: string;
  status: string;
  version: number;
}

export interface Person {
  account: Account;
  context: BrowserContext;
  page: Page;
  errors: string[];
}

export interface Setup {
  workspaceId: string;
  a: Person;
  b: Person;
  rest: ReturnType<typeof restAs>;
  close: () => Promise<void>;
}

/** A owns a new workspace, B is a member; both have its board open and subscribed. */
export async function setup(browser: Browser, request: APIRequestContext, name: string): Promise<Setup> {
  const accountA = await registerViaApi(request, "ada");
  const accountB = await registerViaApi(request, "ben");
  const rest = restAs(request, accountA);
  const workspace = await rest.call<{ id: string }>("POST", "/workspaces", { name });
  await joinAsMember(request, rest, workspace.id, accountB);

  const people: Person[] = [];
  for (const account of [accountA, accountB]) {
    const { context, page } = await newPage(browser);
    const errors = collectErrors(page);
    people.push({ account, context, page, errors });
  }
  const [a, b] = people as [Person, Person];
  for (const person of people) {
    await signIn(person.page, person.account);
    await openBoard(person.page, workspace.id);
  }
  return {
    workspaceId: workspace.id,
    a,
    b,
    rest,
    close: async () => {
      for (const person of people) await person.context.close();
    },
  };
}

export async function openBoard(page: Page, workspaceId: string) {
  await page.goto(`/workspace/?id=${workspaceId}`);
  await expectLive(page);
  await expect(page.getByTestId("board")).toHaveAttribute("data-channel", "subscribed");
  await expect(page.getByTestId("board")).toBeVisible();
}

export const card = (page: Page, title: string) => page.getByTestId("resource-card").filter({ has: page.getByRole("link", { name: title, exact: true }) });
export const cardById = (page: Page, id: string) => page.locator(`[data-testid="resource-card"][data-resource-id="${id}"]`);
export const column = (page: Page, status: string) => page.getByTestId(`column-${status}`);

/**
 * Errors that are not part of the plan: the browser logs failed socket attempts
 * while offline, and every refused If-Match (412: the conflict test's loser).
 */
export function realErrors(errors: string[]): string[] {
  return errors.filter((e) => !/WebSocket|ERR_INTERNET_DISCONNECTED|net::|status of 412/.test(e));
}


/** What a screen reader hears: dnd-kit's live region. */
export const heard = (page: Page) => page.locator('[id^="DndLiveRegion"]');

/**
 * Move a card with the keyboard, as a keyboard user does: focus its move
 * handle, Space picks it up, the arrow keys (↑/↓ within its column, ←/→ to
 * another column; each waits until the last one was announced), Space drops it.
 * Returns what was announced at the drop.
 */
export async function keyMove(page: Page, title: string, keys: readonly ("ArrowUp" | "ArrowDown" | "ArrowLeft" | "ArrowRight")[]): Promise<string> {
  const handle = page.getByRole("button", { name: `Move ${title}`, exact: true });
  const status = await card(page, title).getAttribute("data-status");
  const label = (status ?? "").replace(/[_-]+/g, " ").replace(/^./, (c) => c.toUpperCase());
  const region = heard(page);
  await handle.focus();
  await page.keyboard.press("Space");
  // Picked up, over its own place.
  await expect(region).toContainText(`“${title}” is in ${label}`);
  let last = await region.innerText();
  for (const key of keys) {
    await page.keyboard.press(key);
    await expect(region).toContainText(`“${title}” is in`);
    await expect(region).not.toHaveText(last);
    last = await region.innerText();
  }
  await page.keyboard.press("Space");
  await expect(region).toContainText(`“${title}” was dropped in`);
  return region.innerText();
}

/** Move a card `columns` columns to the right or left with the keyboard. */
export async function moveWithKeys(page: Page, title: string, key: "ArrowRight" | "ArrowLeft", columns: number): Promise<void> {
  await keyMove(page, title, Array.from({ length: columns }, () => key));
}

/** The titles of a column's cards, top to bottom. */
export async function titlesIn(page: Page, status: string): Promise<string[]> {
  return column(page, status).getByTestId("resource-card").locator("h3").allInnerTexts();
}

/** Grab a card by its lower edge (not its title link, which the browser would drag as a link). */
/**
 * A card's box once it has come to rest: cards slide into their places for a
 * moment after a move or a cancelled drag (a CSS transition of their
 * transform), and a box read meanwhile is where the card was passing.
 */
async function restingBox(page: Page, title: string) {
  const located = card(page, title);
  await expect.poll(() => located.evaluate((el) => el.getAnimations().length), { message: `“${title}” comes to rest` }).toBe(0);
  const box = await located.boundingBox();
  if (!box) throw new Error(`no box for ${title}`);
  return box;
}

async function grab(page: Page, title: string) {
  const from = await restingBox(page, title);
  const grip = { x: from.x + from.width / 2, y: from.y + from.height - 8 };
  await page.mouse.move(grip.x, grip.y);
  await page.mouse.down();
  await page.mouse.move(grip.x + 10, grip.y, { steps: 3 });
  // Where the pointer goes to bring the card's middle to a point.
  return (x: number, y: number) => ({ x, y: y + (grip.y - (from.y + from.height / 2)) });
}

/** Drag a card by mouse into another column (in small steps, as a hand does). */
export async function dragTo(page: Page, title: string, status: string): Promise<void> {
  const to = await column(page, status).boundingBox();
  if (!to) throw new Error(`no box for column ${status}`);
  await grab(page, title);
  await page.mouse.move(to.x + to.width / 2, to.y + 60, { steps: 12 });
  await page.mouse.up();
}

/**
 * Drag a card by mouse onto another card: `onto` its place (in the same
 * column), or just `above` / `below` it (in another column).
 */
export async function dragOnto(
  page: Page,
  title: string,
  target: string,
  where: "onto" | "above" | "below",
  /** Runs with the card still held over its target (to look at the drop line, say). */
  beforeDrop?: () => Promise<void>,
): Promise<void> {
  const box = await restingBox(page, target);
  const pointer = await grab(page, title);
  const y = box.y + box.height * (where === "above" ? 0.2 : where === "below" ? 0.8 : 0.5);
  const end = pointer(box.x + box.width / 2, y);
  await page.mouse.move(end.x, end.y, { steps: 15 });
  await page.mouse.move(end.x, end.y + 1, { steps: 2 }); // let the last collision settle
  await beforeDrop?.();
  await page.mouse.up();
}
