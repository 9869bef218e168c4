import type { QueryClient } from "@tanstack/react-query";
import type { Pages } from "./cache";

/**
 * What this tab learnt about rows of a keyed list (a workspace's members by
 * user id and pending invitations by email, the user's workspaces by id) from
 * events and mutation replies, so that a page read that was already on its
 * way cannot undo it.
 *
 * Members and invitations carry no version, and their timestamps are not a
 * clock the client can compare across a removal (nor does a version say that
 * a workspace was left). What orders them is when
 * this tab learnt things: the hub publishes an event after its change is
 * committed, so a read sent after the event arrived already shows the change,
 * and only a read sent before it may not. Every note and every read therefore
 * takes a tick of one counter; when a page lands in the cache (not when its
 * request returns: an infinite query's refetch reads its pages one after
 * another and stores them together), every row noted after the page's read
 * was sent is laid over it — taken out, replaced, or put in where its key
 * sorts into the page. A note that was already in the page changes nothing;
 * one the page missed puts back what the event had done.
 */

/** A row as last seen (`null`: gone — removed, left, declined, revoked, accepted), and when. */
interface Note {
  tick: number;
  row: unknown;
}

/** How a list is kept: each row's key in the ledger, and the hub's order of its pages. */
export interface RowList<T> {
  name: string;
  key: (row: T) => string;
  /** The hub's order; without one, a row no page has goes on top of the first page (as events put it there). */
  order?: (a: T, b: T) => number;
  /** Whether a noted row may replace the page's copy (default: always; rows with a version: not an older one). */
  replaces?: (noted: T, listed: T) => boolean;
}

let clock = 0;
/** The next tick of the one counter that orders what this tab learnt and when each page's read was sent. */
export const nextTick = (): number => ++clock;

const ledgers = new WeakMap<QueryClient, Map<string, Map<string, Note>>>();

function ledger(client: QueryClient, list: RowList<never>, scope: string): Map<string, Note> {
  let lists = ledgers.get(client);
  if (!lists) {
    lists = new Map();
    ledgers.set(client, lists);
  }
  const name = `${list.name}:${scope}`;
  let notes = lists.get(name);
  if (!notes) {
    notes = new Map();
    lists.set(name, notes);
  }
  return notes;
}

/**
 * Remember a row of `list` (in `scope`: the workspace's id, or "" for the
 * user's own list) as an event or a reply showed it (`null`: it is gone). The
 * latest note of a key wins.
 */
export function noteRow<T>(client: QueryClient, list: RowList<T>, scope: string, key: string, row: T | null): void {
  ledger(client, list as RowList<never>, scope).set(key, { tick: nextTick(), row });
}

/** The tick each page's read was sent at, until the page is committed to the cache. */
const sentAt = new WeakMap<object, number>();

/** Run one page's read, remembering when it was sent (the query function of a list that {@link commitPages} keeps). */
export function readPage<P extends object>(read: () => Promise<P>): Promise<P> {
  const tick = nextTick();
  return read().then((page) => {
    sentAt.set(page, tick);
    return page;
  });
}

/**
 * An infinite list's pages as a fetch hands them to the cache (the query's
 * `structuralSharing` calls it with the cached data and the fetch's): each
 * page read by this fetch goes through `settle` with the tick its read was
 * sent at (and the pages before it, settled); the other pages are the ones
 * the fetch started with — a fetch of the next page stores them beside the
 * new one, and events applied to the cache meanwhile would be lost with
 * them — so they are taken from the cache as it is now (by page param).
 * Data without a newly read page (an event's own update) passes as it is.
 */
export function commitPages<P extends object>(
  cached: Pages<P> | undefined,
  data: Pages<P> | undefined,
  settle: (page: P, sent: number, index: number, before: readonly P[]) => P,
): Pages<P> | undefined {
  if (!data || !data.pages.some((page) => sentAt.has(page))) return data;
  const pages: P[] = [];
  data.pages.forEach((page, i) => {
    const sent = sentAt.get(page);
    if (sent === undefined) {
      const param = data.pageParams[i];
      const at = cached && param !== undefined ? cached.pageParams.indexOf(param) : -1;
      pages.push(at === -1 ? page : cached!.pages[at]!);
      return;
    }
    sentAt.delete(page);
    pages.push(settle(page, sent, i, pages));
  });
  return { ...data, pages };
}

/**
 * {@link commitPages} for a keyed list: what was noted after each newly read
 * page's request is laid over it. A row noted as gone leaves the page; a row
 * noted as present replaces its copy, or, when no page has it, goes into the
 * page its key sorts into — after the previous page's last row, and up to this
 * page's last row unless the page is the end of the list (a list without an
 * order: on top of the first page).
 */
export function settlePages<T, P extends { items: T[]; next_cursor?: string | null }>(
  client: QueryClient,
  list: RowList<T>,
  scope: string,
  cached: Pages<P> | undefined,
  data: Pages<P> | undefined,
): Pages<P> | undefined {
  const notes = ledger(client, list as RowList<never>, scope);
  return commitPages(cached, data, (page, sent, i, settled) => {
    let items = page.items;
    const last = page.items[page.items.length - 1];
    const before = settled.findLast((p) => p.items.length > 0)?.items.at(-1);
    const elsewhere = (key: string) =>
      settled.some((p) => p.items.some((r) => list.key(r) === key)) || data!.pages.slice(i + 1).some((p) => p.items.some((r) => list.key(r) === key));
    for (const [key, note] of notes) {
      if (note.tick <= sent) continue;
      const at = items.findIndex((r) => list.key(r) === key);
      if (note.row === null) {
        if (at !== -1) items = items.filter((r) => list.key(r) !== key);
        continue;
      }
      const row = note.row as T;
      const { order, replaces } = list;
      if (at !== -1) {
        if (replaces && !replaces(row, items[at]!)) continue;
        items = [...items.slice(0, at), row, ...items.slice(at + 1)];
        if (order) items.sort(order);
        continue;
      }
      if (elsewhere(key)) continue;
      if (!order) {
        if (i === 0) items = [row, ...items];
        continue;
      }
      const afterBefore = before === undefined || order(before, row) < 0;
      const upToLast = !page.next_cursor || (last !== undefined && order(row, last) <= 0);
      if (afterBefore && upToLast) items = [...items, row].sort(order);
    }
    return items === page.items ? page : { ...page, items };
  });
}
