/**
 * Server state on TanStack Query: the REST reads as query hooks, kept current
 * by the realtime channels' events instead of refetching.
 *
 * The provider is `QueryProvider` (`components/providers/query-provider.tsx`);
 * `RealtimeRoot` mounts it for every signed-in page (the `(app)` layout and
 * the invitation page), inside SessionGate: a sign-out drops the cache.
 *
 * | hook | reads | kept live by |
 * |---|---|---|
 * | `useWorkspacesQuery()` | `GET /workspaces`, infinite (cursor) | `user:<me>` (RealtimeRoot): added → read and put on top, removed/deleted → out |
 * | `useWorkspaceQuery(id)` | `GET /workspaces/{id}` | `workspace.updated`, own `member.updated` (role) |
 * | `useMembersQuery(id)` | members by email, infinite (100 a page) | `member.*` into the loaded pages |
 * | `useInvitationsQuery(id)` | pending invitations by email, infinite (100 a page) | `invitation.*`, `member.added` into the loaded pages |
 * | `useActivityQuery(id)` | activity, infinite | marked stale by every event that writes a row |
 * | `useResourcesQuery(id, filters, {autoLoadUpTo})` | resources, infinite (100 a page) | `resource.*` |
 * | `useTrashQuery(id)` | soft-deleted resources (one page of 100) | `resource.deleted` / `restored` |
 * | `useResourceQuery(ws, id)` | one resource (deleted ones too) | `resource.*` |
 * | `useUsersQuery(filters)` | admin: `GET /users`, infinite | — |
 *
 * Query keys are in `./keys`; everything of a workspace sits under
 * `["workspace", id]`.
 *
 * ## How the board uses them
 *
 * ```tsx
 * const me = useSessionStore((s) => s.user?.id ?? null);
 * // 1. Follow the channel. It applies every event to the cache; `ready` says
 * //    when the subscription stands (or 1.5 s passed), `onEvent` gets each
 * //    event after the cache took it (titles, lost access, toasts).
 * const live = useWorkspaceLive(workspaceId, { me, onEvent, onUnsubscribed });
 * // 2. Read once it is ready: the listing runs once, and events that happen
 * //    between the read and the subscription are not lost (a read that went
 * //    early is repeated once when the subscription arrives).
 * const workspace = useWorkspaceQuery(workspaceId, { enabled: live.ready });
 * const members = useMembersQuery(workspaceId, { enabled: live.ready });
 * const list = useResourcesQuery(workspaceId, filters, { enabled: live.ready, autoLoadUpTo: 500 });
 * // list.items: every loaded resource, each id once, newest version;
 * // list.truncated: more than 500; list.status / list.error / list.refetch().
 * ```
 *
 * - **Events.** `resource.created/updated/restored` upsert the resource into
 *   every cached listing of the workspace (a new one on top of the first page)
 *   at a higher version only; `resource.deleted` takes it out of the listings
 *   and puts it into the trash (`hard: true`: out of everything, for good).
 *   The hub filters listings, events are not filtered: apply the board's
 *   filters on the client too (`matchesFilter` in `lib/board/store.ts`).
 * - **Versions.** The cache keeps the highest version seen per resource: a
 *   page whose request started before an event cannot bring the older copy
 *   back (or a deleted one), whatever order replies and events come in. The
 *   pages are corrected again as the fetch stores them (`commitPages` in
 *   `./rows`): a refetch stores its pages together, and a fetch of the next
 *   page stores the pages it started with, so the loaded pages are taken from
 *   the cache as events left them.
 * - **Members and invitations** have no version: `./rows` keeps, per
 *   workspace, the last word of events and replies on each member (by user
 *   id) and pending invitation (by email), in the order this tab learnt it.
 *   When pages land in the cache, whatever was learnt after a page's request
 *   was sent is laid over it, so a read on its way when `member.removed` (or
 *   a revoke, decline or accept) came cannot put the row back.
 * - **Own changes.** After an RPC (`boardRpc`) answers, hand its result to
 *   `applyResource(queryClient, resource)` (a delete:
 *   `applyResource(queryClient, {...resource, deleted_at}, "soft")`), or let the
 *   echo event do it; the same version twice is a no-op. An edit the hub
 *   made but could not send back (`too_large`, `details.applied`): hand it to
 *   `applyMadeEdit(queryClient, workspaceId, id, patch, version)`, which lays
 *   it over the cached copy (no event or read brings the server's). Optimistic overlays
 *   (Saving…, Not sent yet) stay in the board's own state, on top of the cache.
 * - **Missed events.** On `onReload` (`recovered: false`) every query of the
 *   workspace is invalidated and the active ones read again; a changed filter
 *   is a new query key (the previous one stays cached for going back).
 * - **Trash.** `useTrashQuery(id)` while the dialog is open; Restore through
 *   the RPC, then `applyResource` with the reply (or the `resource.restored`
 *   echo) moves it back to the listings.
 */
export { createQueryClient, shouldRetry } from "./client";
export { resourceKeys, userKeys, workspaceKeys, type ResourceFilters } from "./keys";
export {
  MEMBERS_PAGE_SIZE,
  RESOURCES_PAGE_SIZE,
  fetchResourcesPage,
  invitationsQueryOptions,
  membersQueryOptions,
  resourcesQueryOptions,
  workspacesQueryOptions,
  useActivityQuery,
  useInvitationsQuery,
  useMembersQuery,
  useResourceQuery,
  useResourcesQuery,
  useTrashQuery,
  useUsersQuery,
  useWorkspaceQuery,
  useWorkspacesQuery,
  type LiveQueryOptions,
  type PagedList,
  type ResourcesQueryOptions,
  type UserFilters,
} from "./hooks";
export { LOAD_WAIT_MS, applyUserEvent, asDomainEvent, useWorkspaceLive, type WorkspaceLiveOptions } from "./live";
export {
  applyMadeEdit,
  applyResource,
  applyWorkspaceEvent,
  dropInvitation,
  dropMember,
  dropWorkspace,
  flattenPages,
  mapPages,
  noteResource,
  patchWorkspace,
  reconcilePage,
  setInvitation,
  setMember,
  setUser,
  setWorkspace,
} from "./cache";
export { usePager } from "./pager";
