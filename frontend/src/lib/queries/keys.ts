import type { ListUsersQuery } from "../api/types";
import type { ResourceListQuery } from "../api/resources";

/**
 * Query keys. Everything about one workspace sits under `["workspace", id]`,
 * so `invalidateQueries({ queryKey: workspaceKeys.all(id) })` reloads all of
 * it (what a channel's `onReload` does).
 */
export const workspaceKeys = {
  /** `GET /workspaces` (infinite, cursor). */
  list: () => ["workspaces", "list"] as const,
  /** Prefix of everything below. */
  all: (id: string) => ["workspace", id] as const,
  /** `GET /workspaces/{id}`: name, version, the caller's role. */
  detail: (id: string) => ["workspace", id, "detail"] as const,
  /** `GET /workspaces/{id}/members` (infinite, cursor, by email). */
  members: (id: string) => ["workspace", id, "members"] as const,
  /** `GET /workspaces/{id}/invitations`: pending ones (infinite, cursor, by email). */
  invitations: (id: string) => ["workspace", id, "invitations"] as const,
  /** `GET /workspaces/{id}/activity` (infinite, newest first). */
  activity: (id: string) => ["workspace", id, "activity"] as const,
};

/** The listing filters that make a resources query (cursor and limit are the query's own). */
export type ResourceFilters = Omit<ResourceListQuery, "cursor" | "limit" | "deleted">;

export const resourceKeys = {
  /** Prefix of every resources listing of the workspace (board and trash). */
  lists: (workspaceId: string) => ["workspace", workspaceId, "resources"] as const,
  /** The board's listing for these filters (infinite, cursor). */
  list: (workspaceId: string, filters: ResourceFilters = {}) => ["workspace", workspaceId, "resources", "live", filters] as const,
  /** The soft-deleted ones, newest change first (one page of 100). */
  trash: (workspaceId: string) => ["workspace", workspaceId, "resources", "trash"] as const,
  /** One resource, deleted ones included. */
  detail: (workspaceId: string, resourceId: string) => ["workspace", workspaceId, "resource", resourceId] as const,
};

export const userKeys = {
  /** Admin: `GET /users` (infinite, cursor) for these filters. */
  list: (query: Omit<ListUsersQuery, "cursor" | "limit"> = {}) => ["users", "list", query] as const,
  lists: () => ["users", "list"] as const,
};
