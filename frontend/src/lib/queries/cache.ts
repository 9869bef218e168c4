import type { InfiniteData, QueryClient } from "@tanstack/react-query";
import type { Resource, ResourcePage } from "../api/resources";
import type { ActivityPage, InvitationPage, MemberPage, MyWorkspace, WorkspacePage } from "../api/workspaces";
import type { DomainEvent } from "../realtime/events";
import { removeMember, upsertInvitation, upsertMember, upsertWorkspace } from "../workspaces/live";
import { resourceKeys, userKeys, workspaceKeys } from "./keys";
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

/** The newest copy of a resource this tab has seen from an event or a reply, and whether it is deleted (soft or hard). */
interface Seen {
  resource: Resource;
  deleted: "soft" | "hard" | null;
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
  seen.set(resource.id, { resource, deleted });
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

// ------------------------------------------------------------------ users (admin)

/** A user as the hub answered a change: replaced in every cached users listing. */
export function setUser(client: QueryClient, user: UserPublic): void {
  client.setQueriesData<Pages<UserPage>>({ queryKey: userKeys.lists() }, (data) =>
    mapPages<UserPublic, UserPage>(data, (items) => (items.some((u) => u.id === user.id) ? items.map((u) => (u.id === user.id ? user : u)) : items)),
  );
}

// ------------------------------------------------------------------ workspaces, members, invitations

/** A workspace read over REST (or created here): replaced where the list has it, else on top of the first page. */
export function setWorkspace(client: QueryClient, workspace: MyWorkspace): void {
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
  client.setQueryData<Pages<WorkspacePage>>(workspaceKeys.list(), (data) =>
    mapPages<MyWorkspace, WorkspacePage>(data, (items) => (items.some((w) => w.id === workspaceId) ? items.filter((w) => w.id !== workspaceId) : items)),
  );
}

function setMembers(client: QueryClient, workspaceId: string, fn: (items: MemberPage["items"]) => MemberPage["items"]): void {
  client.setQueryData<MemberPage>(workspaceKeys.members(workspaceId), (page) => {
    if (!page) return page;
    const items = fn(page.items);
    return items === page.items ? page : { ...page, items };
  });
}

function setInvitations(client: QueryClient, workspaceId: string, fn: (items: InvitationPage["items"]) => InvitationPage["items"]): void {
  client.setQueryData<InvitationPage>(workspaceKeys.invitations(workspaceId), (page) => {
    if (!page) return page;
    const items = fn(page.items);
    return items === page.items ? page : { ...page, items };
  });
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
      setMembers(client, workspaceId, (items) => upsertMember(items, member));
      if (event.type === "member.added") setInvitations(client, workspaceId, (items) => (items.some((i) => i.email === member.email) ? items.filter((i) => i.email !== member.email) : items));
      if (member.user_id === me) patchWorkspace(client, workspaceId, { role: member.role });
      return;
    }
    case "member.removed": {
      const member = event.data;
      if (member.workspace_id !== workspaceId) return;
      setMembers(client, workspaceId, (items) => removeMember(items, member.user_id));
      if (member.user_id === me) dropWorkspace(client, workspaceId);
      return;
    }
    case "invitation.created":
      if (event.data.workspace_id === workspaceId) setInvitations(client, workspaceId, (items) => upsertInvitation(items, event.data));
      return;
    case "invitation.declined":
    case "invitation.revoked": {
      const id = event.data.id;
      if (event.data.workspace_id === workspaceId) setInvitations(client, workspaceId, (items) => (items.some((i) => i.id === id) ? items.filter((i) => i.id !== id) : items));
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
