"use client";

import { useEffect, useMemo } from "react";
import { infiniteQueryOptions, replaceEqualDeep, useInfiniteQuery, useQuery, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { resourcesApi, type Resource, type ResourcePage } from "../api/resources";
import type { ListUsersQuery, UserPage } from "../api/types";
import {
  workspacesFor,
  type ActivityPage,
  type InvitationPage,
  type InvitationPublic,
  type MemberPage,
  type MemberPublic,
  type MyWorkspace,
  type WorkspacePage,
} from "../api/workspaces";
import { getServices } from "../services";
import { INVITATION_ROWS, MEMBER_ROWS, WORKSPACE_ROWS, flattenPages, reconcilePage, settleResourcePage, type Cursor, type Pages } from "./cache";
import { resourceKeys, userKeys, workspaceKeys, type ResourceFilters } from "./keys";
import { commitPages, readPage, settlePages } from "./rows";

const workspaces = () => workspacesFor(getServices().api);
const resources = () => resourcesApi(getServices().api);

/** The first page's cursor: none. */
const FIRST: Cursor = null;
/** No rows yet (one array, so a list that is still loading keeps its identity). */
const NO_ROWS: never[] = [];
const nextCursor = (page: { next_cursor?: string | null }): Cursor | undefined => page.next_cursor ?? undefined;

export interface LiveQueryOptions {
  /**
   * Run the query (default true). The pages that follow a channel pass
   * `ready` from `useWorkspaceLive`, so the first read happens once the
   * subscription stands and nothing between the two is missed.
   */
  enabled?: boolean;
}

// ------------------------------------------------------------------ workspaces

/**
 * The list of workspaces query (what `useWorkspacesQuery` passes): pages read
 * through the workspaces' ledger, so a read on its way when the user was
 * removed from one (or it was deleted) cannot put it back, nor lose one they
 * were added to meanwhile.
 */
export function workspacesQueryOptions(client: QueryClient, pageSize = 20) {
  return infiniteQueryOptions({
    queryKey: workspaceKeys.list(),
    queryFn: ({ pageParam, signal }): Promise<WorkspacePage> => readPage(() => workspaces().list({ limit: pageSize, cursor: pageParam }, { signal })),
    initialPageParam: FIRST,
    getNextPageParam: nextCursor,
    structuralSharing: (old: unknown, data: unknown) => replaceEqualDeep(old, settlePages(client, WORKSPACE_ROWS, "", old as Pages<WorkspacePage> | undefined, data as Pages<WorkspacePage>)),
  });
}

/** `GET /workspaces`, newest first, `pageSize` a page; `fetchNextPage` for *Load more*. */
export function useWorkspacesQuery(pageSize = 20) {
  const client = useQueryClient();
  const query = useInfiniteQuery(workspacesQueryOptions(client, pageSize));
  const items = useMemo(() => flattenPages<MyWorkspace>(query.data, (w) => w.id), [query.data]);
  return { ...query, items };
}

/** `GET /workspaces/{id}`: name, version and the caller's role. */
export function useWorkspaceQuery(workspaceId: string, options: LiveQueryOptions = {}) {
  return useQuery({
    queryKey: workspaceKeys.detail(workspaceId),
    queryFn: ({ signal }): Promise<MyWorkspace> => workspaces().get(workspaceId, { signal }),
    enabled: options.enabled ?? true,
  });
}

export const MEMBERS_PAGE_SIZE = 100;

/** An infinite list's pages with every loaded row once, in order, as `items` (what `select` makes of the cached pages). */
export type PagedList<T, P> = Pages<P> & { items: T[] };

const withMembers = (data: Pages<MemberPage>): PagedList<MemberPublic, MemberPage> => ({ ...data, items: flattenPages(data, (m) => m.user_id) });
const withInvitations = (data: Pages<InvitationPage>): PagedList<InvitationPublic, InvitationPage> => ({ ...data, items: flattenPages(data, (i) => i.id) });

/**
 * The members query (the options `useMembersQuery` passes; tests and
 * prefetches use them as they are): each page read through the members'
 * ledger, so a page that was on its way when a `member.*` event (or a reply)
 * came cannot bring back a removed member or an older copy, nor lose an added
 * one, whether it is the first read, *Load more* or a refetch of every page.
 */
export function membersQueryOptions(client: QueryClient, workspaceId: string, pageSize = MEMBERS_PAGE_SIZE) {
  return infiniteQueryOptions({
    queryKey: workspaceKeys.members(workspaceId),
    queryFn: ({ pageParam, signal }): Promise<MemberPage> => readPage(() => workspaces().members(workspaceId, { limit: pageSize, cursor: pageParam }, { signal })),
    initialPageParam: FIRST,
    getNextPageParam: nextCursor,
    structuralSharing: (old: unknown, data: unknown) => replaceEqualDeep(old, settlePages(client, MEMBER_ROWS, workspaceId, old as Pages<MemberPage> | undefined, data as Pages<MemberPage>)),
  });
}

/** The pending invitations query, kept like {@link membersQueryOptions} by the invitations' ledger (by email). */
export function invitationsQueryOptions(client: QueryClient, workspaceId: string, pageSize = MEMBERS_PAGE_SIZE) {
  return infiniteQueryOptions({
    queryKey: workspaceKeys.invitations(workspaceId),
    queryFn: ({ pageParam, signal }): Promise<InvitationPage> =>
      readPage(() => workspaces().invitations(workspaceId, { limit: pageSize, cursor: pageParam }, { signal })),
    initialPageParam: FIRST,
    getNextPageParam: nextCursor,
    structuralSharing: (old: unknown, data: unknown) => replaceEqualDeep(old, settlePages(client, INVITATION_ROWS, workspaceId, old as Pages<InvitationPage> | undefined, data as Pages<InvitationPage>)),
  });
}

/**
 * The workspace's members by email as an infinite query over the cursor
 * listing (`pageSize` a page; `fetchNextPage` for *Load more*). `data.items`
 * (and `items`) is every loaded page, each member once. `member.*` events
 * (through `useWorkspaceLive`) are applied to the cached pages: a change in
 * place, a new member into the page its email belongs to (or left for the
 * next page when it sorts after every loaded one); a page read before an
 * event cannot undo it ({@link membersQueryOptions}).
 */
export function useMembersQuery(workspaceId: string, options: LiveQueryOptions = {}, pageSize = MEMBERS_PAGE_SIZE) {
  const client = useQueryClient();
  const query = useInfiniteQuery({ ...membersQueryOptions(client, workspaceId, pageSize), select: withMembers, enabled: options.enabled ?? true });
  return { ...query, items: query.data?.items ?? NO_ROWS };
}

/** Pending invitations by email, infinite like {@link useMembersQuery}. `invitation.*` and `member.added` (accepted) keep the cached pages current. */
export function useInvitationsQuery(workspaceId: string, options: LiveQueryOptions = {}, pageSize = MEMBERS_PAGE_SIZE) {
  const client = useQueryClient();
  const query = useInfiniteQuery({ ...invitationsQueryOptions(client, workspaceId, pageSize), select: withInvitations, enabled: options.enabled ?? true });
  return { ...query, items: query.data?.items ?? NO_ROWS };
}

/** The activity log, newest first, `pageSize` a page. Events mark it stale (`useWorkspaceLive`). */
export function useActivityQuery(workspaceId: string, pageSize = 30, options: LiveQueryOptions = {}) {
  const query = useInfiniteQuery({
    queryKey: workspaceKeys.activity(workspaceId),
    queryFn: ({ pageParam, signal }): Promise<ActivityPage> => workspaces().activity(workspaceId, { limit: pageSize, cursor: pageParam }, { signal }),
    initialPageParam: FIRST,
    getNextPageParam: nextCursor,
    enabled: options.enabled ?? true,
  });
  const items = useMemo(() => flattenPages(query.data, (entry) => entry.id), [query.data]);
  return { ...query, items };
}

// ------------------------------------------------------------------ resources

export const RESOURCES_PAGE_SIZE = 100;

/** One page of the board's listing, corrected by the versions this tab has already seen from events. */
export function fetchResourcesPage(client: QueryClient, workspaceId: string, filters: ResourceFilters, cursor: Cursor, signal: AbortSignal): Promise<ResourcePage> {
  return resources()
    .list(workspaceId, { ...filters, limit: RESOURCES_PAGE_SIZE, cursor }, { signal })
    .then((page) => reconcilePage(client, workspaceId, page, false));
}

/**
 * The board's listing query for `filters` (what `useResourcesQuery` passes).
 * Each page is corrected by the versions seen when it lands, and again when
 * the fetch stores it: a refetch reads its pages one after another, and a
 * fetch of the next page stores the pages it started with, so an event that
 * came meanwhile is laid over the pages again ({@link commitPages}); a card
 * learnt after the first page's read was sent, which no page lists, goes on
 * top of the first page as its event put it ({@link settleResourcePage}).
 */
export function resourcesQueryOptions(client: QueryClient, workspaceId: string, filters: ResourceFilters) {
  return infiniteQueryOptions({
    queryKey: resourceKeys.list(workspaceId, filters),
    queryFn: ({ pageParam, signal }): Promise<ResourcePage> => readPage(() => fetchResourcesPage(client, workspaceId, filters, pageParam, signal)),
    initialPageParam: FIRST,
    getNextPageParam: nextCursor,
    structuralSharing: (old: unknown, data: unknown) =>
      replaceEqualDeep(
        old,
        commitPages(old as Pages<ResourcePage> | undefined, data as Pages<ResourcePage>, (page, sent, index) =>
          settleResourcePage(client, workspaceId, page, sent, index, (id) =>
            (data as Pages<ResourcePage>).pages.some((p, i) => i !== index && p.items.some((r) => r.id === id)),
          ),
        ),
      ),
  });
}

export interface ResourcesQueryOptions extends LiveQueryOptions {
  /**
   * Keep fetching the next page until this many are loaded or there are no
   * more (the board shows a workspace at once: 500). Default: one page;
   * `fetchNextPage` for more.
   */
  autoLoadUpTo?: number;
}

/**
 * The workspace's resources for `filters` as an infinite query over the
 * cursor listing (100 a page). `items` is every loaded page, each id once;
 * `truncated` is true when `autoLoadUpTo` stopped before the end. Live
 * `resource.*` events (through `useWorkspaceLive`) are applied to the cached
 * pages; a page read after an event never brings an older version back.
 */
export function useResourcesQuery(workspaceId: string, filters: ResourceFilters = {}, options: ResourcesQueryOptions = {}) {
  const client = useQueryClient();
  const query = useInfiniteQuery({ ...resourcesQueryOptions(client, workspaceId, filters), enabled: options.enabled ?? true });
  const items = useMemo(() => flattenPages<Resource>(query.data, (r) => r.id), [query.data]);
  const limit = options.autoLoadUpTo ?? 0;
  const { hasNextPage, isFetchingNextPage, isFetching, fetchNextPage } = query;
  const wantMore = hasNextPage && !isFetching && !isFetchingNextPage && items.length < limit;
  useEffect(() => {
    if (wantMore) void fetchNextPage();
  }, [wantMore, fetchNextPage]);
  return { ...query, items, truncated: limit > 0 && hasNextPage && items.length >= limit };
}

/** The Trash: soft-deleted resources, most recently changed first (one page of 100). */
export function useTrashQuery(workspaceId: string, options: LiveQueryOptions = {}) {
  const client = useQueryClient();
  return useQuery({
    queryKey: resourceKeys.trash(workspaceId),
    queryFn: ({ signal }) =>
      resources()
        .list(workspaceId, { deleted: true, sort: "updated_at", order: "desc", limit: 100 }, { signal })
        .then((page) => reconcilePage(client, workspaceId, page, true)),
    enabled: options.enabled ?? true,
  });
}

/** One resource, deleted ones included (the detail page). */
export function useResourceQuery(workspaceId: string, resourceId: string, options: LiveQueryOptions = {}) {
  return useQuery({
    queryKey: resourceKeys.detail(workspaceId, resourceId),
    queryFn: ({ signal }): Promise<Resource> => resources().get(workspaceId, resourceId, { includeDeleted: true, signal }),
    enabled: options.enabled ?? true,
  });
}

// ------------------------------------------------------------------ users (admin)

export type UserFilters = Omit<ListUsersQuery, "cursor" | "limit">;

/** Admin: `GET /users` for `filters`, `pageSize` a page. */
export function useUsersQuery(filters: UserFilters, pageSize = 25) {
  const query = useInfiniteQuery({
    queryKey: userKeys.list(filters),
    queryFn: ({ pageParam, signal }): Promise<UserPage> => getServices().users.list({ ...filters, limit: pageSize, cursor: pageParam ?? undefined }, signal),
    initialPageParam: FIRST,
    getNextPageParam: nextCursor,
  });
  const items = useMemo(() => flattenPages(query.data, (u) => u.id), [query.data]);
  return { ...query, items };
}
