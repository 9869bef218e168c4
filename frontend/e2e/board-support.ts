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


/**
 * Move a card to another column with the keyboard, as a keyboard user does:
 * focus its move handle, Space picks it up, an arrow key per column, Space drops it.
 */
export async function moveWithKeys(page: Page, title: string, key: "ArrowRight" | "ArrowLeft", columns: number): Promise<void> {
  const handle = page.getByRole("button", { name: `Move ${title}`, exact: true });
  const status = await card(page, title).getAttribute("data-status");
  const label = (status ?? "").replace(/[_-]+/g, " ").replace(/^./, (c) => c.toUpperCase());
  const heard = page.locator('[id^="DndLiveRegion"]'); // what a screen reader hears
  await handle.focus();
  await page.keyboard.press("Space");
  // Picked up, over its own column; each key then waits for the last one to be taken.
  await expect(heard).toHaveText(`“${title}” is over ${label}.`);
  let last = `“${title}” is over ${label}.`;
  for (let i = 0; i < columns; i += 1) {
    await page.keyboard.press(key);
    await expect(heard).toContainText(`“${title}” is over`);
    await expect(heard).not.toHaveText(last);
    last = await heard.innerText();
  }
  await page.keyboard.press("Space");
  await expect(heard).toContainText(`“${title}” was dropped in`);
}

/** Drag a card by mouse into another column (in small steps, as a hand does). */
export async function dragTo(page: Page, title: string, status: string): Promise<void> {
  const from = await card(page, title).boundingBox();
  const to = await column(page, status).boundingBox();
  if (!from || !to) throw new Error(`no box for ${title} or column ${status}`);
  await page.mouse.move(from.x + from.width / 2, from.y + from.height - 8);
  await page.mouse.down();
  await page.mouse.move(from.x + from.width / 2 + 10, from.y + from.height - 8, { steps: 3 });
  await page.mouse.move(to.x + to.width / 2, to.y + 60, { steps: 12 });
  await page.mouse.up();
}
