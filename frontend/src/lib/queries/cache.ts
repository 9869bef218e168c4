import type { InfiniteData, QueryClient } from "@tanstack/react-query";
import type { Resource, ResourcePage, ResourcePatch } from "../api/resources";
import type { ActivityPage, InvitationPage, InvitationPublic, MemberPage, MemberPublic, MyWorkspace, WorkspacePage } from "../api/workspaces";
import type { DomainEvent } from "../realtime/events";
import { removeMember, upsertWorkspace } from "../workspaces/live";
import { resourceKeys, userKeys, workspaceKeys } from "./keys";
import { nextTick, noteRow, type RowList } from "./rows";
import type { UserPage, UserPublic } from "../api/types";

/**
 * Live events → the query cache, as pure functions of a `QueryClient` (the
 * hooks in `./live` call them; tests call them directly). Every function
 * changes only queries that are already cached: an event never creates a
 * list nobody asked for.
 */

export type Cursor = string | null;
export type Pages<P> = InfiniteData<P, Cursor>;

/** Apply `fn` to every item of every page; a page whose items did not change keeps its identity. */
export function mapPages<T, P extends { items: T[] }>(data: Pages<P> | undefined, fn: (items: T[], pageIndex: number) => T[]): Pages<P> | undefined {
  if (!data) return data;
  let changed = false;
  const pages = data.pages.map((page, i) => {
    const items = fn(page.items, i);
    if (items === page.items) return page;
    changed = true;
    return { ...page, items };
  });
  return changed ? { ...data, pages } : data;
}

/** Every item of an infinite list, in page order, each id once (a row may move between pages). */
export function flattenPages<T>(data: { pages: readonly { items: readonly T[] }[] } | undefined, key: (item: T) => string | number): T[] {
  if (!data) return [];
  const seen = new Set<string | number>();
  const out: T[] = [];
  for (const page of data.pages) {
    for (const item of page.items) {
      const k = key(item);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(item);
    }
  }
  return out;
}

// ------------------------------------------------------------------ resources: versions

/** A resource as REST, RPC replies and events carry it (events may leave `deleted_at` out; a delete says `hard`). */
export type ResourceLike = Omit<Resource, "deleted_at"> & { deleted_at?: string | null; hard?: boolean };

function asResource({ hard: _hard, deleted_at, ...rest }: ResourceLike): Resource {
  return { ...rest, deleted_at: deleted_at ?? null };
}

/** The newest copy of a resource this tab has seen from an event or a reply, whether it is deleted (soft or hard), and when it was learnt (`./rows`' ticks). */
interface Seen {
  resource: Resource;
  deleted: "soft" | "hard" | null;
  tick: number;
}

const ledgers = new WeakMap<QueryClient, Map<string, Map<string, Seen>>>();

function ledger(client: QueryClient, workspaceId: string): Map<string, Seen> {
  let byWorkspace = ledgers.get(client);
  if (!byWorkspace) {
    byWorkspace = new Map();
    ledgers.set(client, byWorkspace);
  }
  let seen = byWorkspace.get(workspaceId);
  if (!seen) {
    seen = new Map();
    byWorkspace.set(workspaceId, seen);
  }
  return seen;
}

/**
 * Remember a resource's newest version (from an event or a mutation's reply).
 * Returns false when an equal or newer one was seen already (then nothing changes).
 * A hard delete is final whatever version comes later.
 */
export function noteResource(client: QueryClient, resource: Resource, deleted: Seen["deleted"] = resource.deleted_at ? "soft" : null): boolean {
  const seen = ledger(client, resource.workspace_id);
  const before = seen.get(resource.id);
  if (before && (before.deleted === "hard" || before.resource.version >= resource.version)) return false;
  seen.set(resource.id, { resource, deleted, tick: nextTick() });
  return true;
}

/**
 * A page read over REST, corrected by what this tab already knows: a row
 * older than a seen version is replaced by the seen copy, a row deleted since
 * (soft, on a live list; any, on the trash) is dropped. So a page whose
 * request started before an event cannot undo it.
 */
export function reconcilePage(client: QueryClient, workspaceId: string, page: ResourcePage, trash: boolean): ResourcePage {
  const seen = ledger(client, workspaceId);
  if (seen.size === 0) return page;
  const items: Resource[] = [];
  for (const item of page.items) {
    const newer = seen.get(item.id);
    if (!newer || newer.resource.version <= item.version) {
      items.push(item);
      continue;
    }
    if (newer.deleted === "hard") continue;
    if ((newer.deleted === "soft") !== trash) continue;
    items.push(newer.resource);
  }
  return { ...page, items };
}

/**
 * A page of the live listing as a fetch stores it (`sent`: the tick its read
 * was sent at; `listedElsewhere`: whether another page of the fetch has the
 * id): {@link reconcilePage}, and, on the first page, the live resources
 * learnt after the read was sent that no page lists, on top — where their
 * events put them, and where the arriving page would otherwise take them away
 * (a card created while the first page was being read). A read sent after an
 * event already shows its change, so only later notes are added.
 */
export function settleResourcePage(
  client: QueryClient,
  workspaceId: string,
  page: ResourcePage,
  sent: number,
  index: number,
  listedElsewhere: (id: string) => boolean,
): ResourcePage {
  const settled = reconcilePage(client, workspaceId, page, false);
  if (index !== 0) return settled;
  const added: Resource[] = [];
  for (const [id, note] of ledger(client, workspaceId)) {
    if (note.tick <= sent || note.deleted !== null) continue;
    if (settled.items.some((r) => r.id === id) || listedElsewhere(id)) continue;
    added.push(note.resource);
  }
  if (added.length === 0) return settled;
  added.reverse(); // the latest learnt on top, as one event after another puts them
  return { ...settled, items: [...added, ...settled.items] };
}

function upsertResource(items: Resource[], resource: Resource, insert: boolean): Resource[] {
  const at = items.findIndex((r) => r.id === resource.id);
  if (at === -1) return insert ? [resource, ...items] : items;
  if (items[at]!.version >= resource.version) return items;
  const next = [...items];
  next[at] = resource;
  return next;
}

function without(items: Resource[], id: string): Resource[] {
  return items.some((r) => r.id === id) ? items.filter((r) => r.id !== id) : items;
}

/**
 * Put a resource into the cache: every live listing of its workspace (a new
 * one goes on top of the first page — listings are filtered on the hub, so a
 * page shows the board's filters on the client too), the trash, and its
 * detail query. Older versions are ignored.
 */
export function applyResource(client: QueryClient, resource: ResourceLike, deleted: Seen["deleted"] = null): void {
  const copy = asResource(resource);
  if (!noteResource(client, copy, deleted)) return;
  const ws = copy.workspace_id;
  client.setQueriesData<Pages<ResourcePage>>({ queryKey: [...resourceKeys.lists(ws), "live"] }, (data) => {
    if (deleted) return mapPages<Resource, ResourcePage>(data, (items) => without(items, copy.id));
    const listed = data?.pages.some((page) => page.items.some((r) => r.id === copy.id)) ?? false;
    return mapPages<Resource, ResourcePage>(data, (items, i) => upsertResource(items, copy, !listed && i === 0));
  });
  client.setQueryData<ResourcePage>(resourceKeys.trash(ws), (page) => {
    if (!page) return page;
    const items = deleted === "soft" ? upsertResource(page.items, copy, true) : without(page.items, copy.id);
    return items === page.items ? page : { ...page, items };
  });
  const detail = resourceKeys.detail(ws, copy.id);
  if (deleted === "hard") client.removeQueries({ queryKey: detail, exact: true });
  else client.setQueryData<Resource>(detail, (current) => (current && current.version >= copy.version ? current : current ? copy : current));
}

/** The newest copy of a resource the cache holds: noted (an event, a reply), in a live listing, or in its detail query. */
function cachedResource(client: QueryClient, workspaceId: string, id: string): Resource | undefined {
  const note = ledger(client, workspaceId).get(id);
  if (note?.deleted === "hard") return undefined;
  let newest = note?.resource;
  const take = (copy: Resource | undefined) => {
    if (copy && (!newest || copy.version > newest.version)) newest = copy;
  };
  take(client.getQueryData<Resource>(resourceKeys.detail(workspaceId, id)));
  for (const [, data] of client.getQueriesData<Pages<ResourcePage>>({ queryKey: [...resourceKeys.lists(workspaceId), "live"] })) {
    for (const page of data?.pages ?? []) take(page.items.find((r) => r.id === id));
  }
  return newest;
}

/**
 * An edit the hub made without sending its copy back (`too_large` with
 * `details.applied`: the card is over what NATS carries, so neither its event
 * nor a read brings the server's copy): `patch` laid over the newest cached
 * copy, at `version`, put in the cache as {@link applyResource} puts a reply.
 * So every page that reads the cache (the board, the card's page, either
 * mounted again) shows it, and the next edit goes at that version instead of
 * being refused as stale. Nothing when the cache holds no copy of the card or
 * one at `version` or later.
 */
export function applyMadeEdit(client: QueryClient, workspaceId: string, id: string, patch: ResourcePatch, version: number): void {
  const base = cachedResource(client, workspaceId, id);
  if (!base || base.version >= version) return;
  const fields = Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)) as Partial<Resource>;
  const copy: Resource = { ...base, ...fields, id, version };
  applyResource(client, copy, copy.deleted_at ? "soft" : null);
}

// ------------------------------------------------------------------ users (admin)

/** A user as the hub answered a change: replaced in every cached users listing. */
export function setUser(client: QueryClient, user: UserPublic): void {
  client.setQueriesData<Pages<UserPage>>({ queryKey: userKeys.lists() }, (data) =>
    mapPages<UserPublic, UserPage>(data, (items) => (items.some((u) => u.id === user.id) ? items.map((u) => (u.id === user.id ? user : u)) : items)),
  );
}

// ------------------------------------------------------------------ workspaces, members, invitations

/** The list of workspaces' ledger (`./rows`, one for the user): by id; newest first on the hub, a new one goes on top. */
export const WORKSPACE_ROWS: RowList<MyWorkspace> = { name: "workspaces", key: (w) => w.id, replaces: (noted, listed) => noted.version >= listed.version };

/** A workspace read over REST (or created here): replaced where the list has it, else on top of the first page. */
export function setWorkspace(client: QueryClient, workspace: MyWorkspace): void {
  noteRow(client, WORKSPACE_ROWS, "", workspace.id, workspace);
  client.setQueryData<Pages<WorkspacePage>>(workspaceKeys.list(), (data) => {
    if (!data) return data;
    const listed = data.pages.some((page) => page.items.some((w) => w.id === workspace.id));
    return mapPages<MyWorkspace, WorkspacePage>(data, (items, i) =>
      listed ? (items.some((w) => w.id === workspace.id) ? upsertWorkspace(items, workspace) : items) : i === 0 ? upsertWorkspace(items, workspace) : items,
    );
  });
  client.setQueryData<MyWorkspace>(workspaceKeys.detail(workspace.id), workspace);
}

/**
 * A change of the workspace (`workspace.updated` carries no role; a
 * `member.updated` of the caller carries only the role): merged into the
 * cached copies. A `version` older than the cached one is ignored.
 */
export function patchWorkspace(client: QueryClient, id: string, patch: Partial<MyWorkspace>): void {
  const clean = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<MyWorkspace>;
  const merge = (w: MyWorkspace): MyWorkspace => (clean.version !== undefined && w.version > clean.version ? w : { ...w, ...clean, id: w.id });
  client.setQueryData<Pages<WorkspacePage>>(workspaceKeys.list(), (data) =>
    mapPages<MyWorkspace, WorkspacePage>(data, (items) => (items.some((w) => w.id === id) ? items.map((w) => (w.id === id ? merge(w) : w)) : items)),
  );
  client.setQueryData<MyWorkspace>(workspaceKeys.detail(id), (current) => (current ? merge(current) : current));
}

/** Gone for this user (deleted, or they were removed): out of the list, and its queries dropped. */
export function dropWorkspace(client: QueryClient, workspaceId: string): void {
  noteRow<MyWorkspace>(client, WORKSPACE_ROWS, "", workspaceId, null);
  client.setQueryData<Pages<WorkspacePage>>(workspaceKeys.list(), (data) =>
    mapPages<MyWorkspace, WorkspacePage>(data, (items) => (items.some((w) => w.id === workspaceId) ? items.filter((w) => w.id !== workspaceId) : items)),
  );
}

/** Compare two rows in a list kept by email (the hub's order for members and invitations). */
type ByEmail<T> = (a: T, b: T) => number;

const memberOrder: ByEmail<MemberPublic> = (a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0);
const invitationOrder: ByEmail<InvitationPublic> = (a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : 0);

/** The members' ledger (`./rows`): by user id. */
export const MEMBER_ROWS: RowList<MemberPublic> = { name: "members", key: (m) => m.user_id, order: memberOrder };
/** The pending invitations' ledger: by email (a workspace has one pending invitation per email; a new one replaces it). */
export const INVITATION_ROWS: RowList<InvitationPublic> = { name: "invitations", key: (i) => i.email, order: invitationOrder };

/**
 * Put `row` into a cursor list kept by email, across its loaded pages: every
 * copy that `drop` matches goes (the old copy, wherever it was), then the row
 * goes into the first page whose last row sorts after it — or, past them all,
 * the page it was on, or the last page if that is the end of the list. A row that sorts after every loaded page
 * while more pages follow is left for *Load more* to read (the hub's cursor
 * is keyset, after the last email read, so it comes with that page).
 */
function placeByEmail<T, P extends { items: T[]; next_cursor?: string | null }>(data: Pages<P> | undefined, row: T, drop: (item: T) => boolean, order: ByEmail<T>): Pages<P> | undefined {
  if (!data) return data;
  const was = data.pages.findIndex((page) => page.items.some(drop));
  const cleared = mapPages<T, P>(data, (items) => (items.some(drop) ? items.filter((i) => !drop(i)) : items))!;
  const pages = cleared.pages;
  let at = pages.findIndex((page) => page.items.length > 0 && order(row, page.items[page.items.length - 1]!) <= 0);
  if (at === -1) {
    const last = pages.length - 1;
    // A row that was listed stays listed (it was the last of its page); a new one past the loaded pages waits for them.
    if (was !== -1) at = was;
    else if (last < 0 || pages[last]!.next_cursor) return cleared;
    else at = last;
  }
  return mapPages<T, P>(cleared, (items, i) => (i === at ? [...items, row].sort(order) : items));
}

/** A member (added or changed) in the cached pages of the workspace's members, in its place by email. */
export function setMember(client: QueryClient, workspaceId: string, member: MemberPublic): void {
  noteRow(client, MEMBER_ROWS, workspaceId, member.user_id, member);
  client.setQueryData<Pages<MemberPage>>(workspaceKeys.members(workspaceId), (data) => placeByEmail(data, member, (m) => m.user_id === member.user_id, memberOrder));
}

/** A member out of every cached page (removed, or left). */
export function dropMember(client: QueryClient, workspaceId: string, userId: string): void {
  noteRow(client, MEMBER_ROWS, workspaceId, userId, null);
  client.setQueryData<Pages<MemberPage>>(workspaceKeys.members(workspaceId), (data) =>
    mapPages<MemberPublic, MemberPage>(data, (items) => (items.some((m) => m.user_id === userId) ? removeMember(items, userId) : items)),
  );
}

/** A pending invitation in the cached pages: it replaces the one with its id or email (a new invitation replaces the old one). */
export function setInvitation(client: QueryClient, workspaceId: string, invitation: InvitationPublic): void {
  noteRow(client, INVITATION_ROWS, workspaceId, invitation.email, invitation);
  client.setQueryData<Pages<InvitationPage>>(workspaceKeys.invitations(workspaceId), (data) =>
    placeByEmail(data, invitation, (i) => i.id === invitation.id || i.email === invitation.email, invitationOrder),
  );
}

/**
 * Take invitations out of the cached pages: by id (declined, revoked) or by
 * email (accepted: `member.added`). The ledger notes the email as having no
 * pending invitation: one a page read earlier still shows is older.
 */
export function dropInvitation(client: QueryClient, workspaceId: string, match: { id: string; email: string } | { email: string }): void {
  noteRow<InvitationPublic>(client, INVITATION_ROWS, workspaceId, match.email, null);
  const drop = "id" in match ? (i: InvitationPublic) => i.id === match.id : (i: InvitationPublic) => i.email === match.email;
  client.setQueryData<Pages<InvitationPage>>(workspaceKeys.invitations(workspaceId), (data) =>
    mapPages<InvitationPublic, InvitationPage>(data, (items) => (items.some(drop) ? items.filter((i) => !drop(i)) : items)),
  );
}

/** What an event on `workspace:<id>` means for the cache; `me` is the signed-in user's id. */
export function applyWorkspaceEvent(client: QueryClient, workspaceId: string, event: DomainEvent, me: string | null): void {
  switch (event.type) {
    case "resource.created":
    case "resource.updated":
    case "resource.restored":
      if (event.data.workspace_id === workspaceId) applyResource(client, event.data);
      return;
    case "resource.deleted":
      if (event.data.workspace_id === workspaceId) applyResource(client, event.data, event.data.hard ? "hard" : "soft");
      return;
    case "workspace.updated":
      if (event.data.id === workspaceId) patchWorkspace(client, workspaceId, event.data);
      return;
    case "workspace.deleted":
      if (event.data.id === workspaceId) dropWorkspace(client, workspaceId);
      return;
    case "member.added":
    case "member.updated": {
      const member = event.data;
      if (member.workspace_id !== workspaceId) return;
      setMember(client, workspaceId, member);
      if (event.type === "member.added") dropInvitation(client, workspaceId, { email: member.email });
      if (member.user_id === me) patchWorkspace(client, workspaceId, { role: member.role });
      return;
    }
    case "member.removed": {
      const member = event.data;
      if (member.workspace_id !== workspaceId) return;
      dropMember(client, workspaceId, member.user_id);
      if (member.user_id === me) dropWorkspace(client, workspaceId);
      return;
    }
    case "invitation.created":
      if (event.data.workspace_id === workspaceId) setInvitation(client, workspaceId, event.data);
      return;
    case "invitation.declined":
    case "invitation.revoked": {
      if (event.data.workspace_id === workspaceId) dropInvitation(client, workspaceId, { id: event.data.id, email: event.data.email });
      return;
    }
    default:
      return;
  }
}

/** Activity is written by most events: mark the feed stale (an open feed reads its first page again). */
export function touchesActivity(event: DomainEvent): boolean {
  return /^(resource|member|workspace|invitation)\./.test(event.type);
}

export type { ActivityPage };
