import { serializeQuery, type ApiClient } from "./client";
import type { components } from "./schema";
import { requestBody } from "./types";

/**
 * Resources of a workspace (`/api/v1/workspaces/{id}/resources`, docs/domain.md),
 * plus the two workspace reads the board needs (its name, its members' names).
 * Shapes are the generated OpenAPI types; nothing here is hand-written.
 *
 * Concurrency: every change takes the version it was based on and sends it as
 * `If-Match: "<version>"`; a stale one is refused with 412 `precondition_failed`
 * (see {@link isStaleVersion}). Creation sends an `Idempotency-Key`, so a retry
 * after a lost reply creates one resource, not two.
 */

type Schemas = components["schemas"];

export type Resource = Schemas["ResourcePublic"];
export type ResourcePage = Schemas["ResourcePage"];
export type ResourcePatch = Schemas["ResourceUpdateBody"];
/** `ResourceCreateBody`, with the fields the hub defaults (`body`, `status`) optional. */
export type ResourceCreateInput = Omit<Schemas["ResourceCreateBody"], "body" | "status"> &
  Partial<Pick<Schemas["ResourceCreateBody"], "body" | "status">>;
/** `ResourceListParams` without the path parameter; every field optional. */
export type ResourceListQuery = Partial<Omit<Schemas["ResourceListParams"], "workspace_id">>;
export type SortField = Schemas["SortField"];
export type SortOrder = Schemas["Order"];
export type Workspace = Schemas["MyWorkspace"];
export type Member = Schemas["MemberPublic"];
export type MemberPage = Schemas["MemberPage"];

/** `If-Match` takes the version as a quoted entity tag. */
export function etag(version: number): string {
  return `"${version}"`;
}

/** The query string of a listing as it goes out (`tag` repeated, empty filters left out), with its `?`. */
export function listQueryString(query: ResourceListQuery = {}): string {
  const text = serializeQuery(query);
  return text ? `?${text}` : "";
}

const ref = (workspaceId: string, resourceId: string) => ({ workspace_id: workspaceId, resource_id: resourceId });

export interface MutationOptions {
  signal?: AbortSignal;
}

export function resourcesApi(api: ApiClient, newKey: () => string = () => crypto.randomUUID()) {
  const { http } = api;
  /** A change: an `Idempotency-Key` (a fresh one unless given), and `If-Match` for the version it is based on. */
  const change = (version: number, key?: string) => ({ "Idempotency-Key": key ?? newKey(), "If-Match": etag(version) });
  return {
    /** One page; `tag` repeats (`tag=a&tag=b`), empty filters are left out. */
    list(workspaceId: string, query: ResourceListQuery = {}, options: MutationOptions = {}): Promise<ResourcePage> {
      return api.unwrap(
        http.GET("/api/v1/workspaces/{workspace_id}/resources", { params: { path: { workspace_id: workspaceId }, query }, signal: options.signal }),
      );
    },

    /**
     * Every page of a listing, up to `max` items (the board shows a workspace's
     * resources at once; `truncated` says when there were more).
     */
    async listAll(
      workspaceId: string,
      query: ResourceListQuery = {},
      options: MutationOptions & { max?: number } = {},
    ): Promise<{ items: Resource[]; truncated: boolean }> {
      const max = options.max ?? 500;
      const items: Resource[] = [];
      let cursor: string | null | undefined = undefined;
      for (;;) {
        const page: ResourcePage = await this.list(workspaceId, { ...query, limit: query.limit ?? 100, cursor }, options);
        items.push(...page.items);
        cursor = page.next_cursor;
        if (!cursor) return { items, truncated: false };
        if (items.length >= max) return { items, truncated: true };
      }
    },

    get(workspaceId: string, resourceId: string, options: MutationOptions & { includeDeleted?: boolean } = {}): Promise<Resource> {
      const query = options.includeDeleted ? { include_deleted: true } : {};
      return api.unwrap(
        http.GET("/api/v1/workspaces/{workspace_id}/resources/{resource_id}", {
          params: { path: ref(workspaceId, resourceId), query },
          signal: options.signal,
        }),
      );
    },

    /** `idempotencyKey`: pass the same one when retrying the same create. */
    create(workspaceId: string, body: ResourceCreateInput, options: MutationOptions & { idempotencyKey?: string } = {}): Promise<Resource> {
      return api.unwrap(
        http.POST("/api/v1/workspaces/{workspace_id}/resources", {
          params: { path: { workspace_id: workspaceId }, header: { "Idempotency-Key": options.idempotencyKey ?? newKey() } },
          body: requestBody<Schemas["ResourceCreateBody"]>(body),
          signal: options.signal,
        }),
      );
    },

    /** 412 `precondition_failed` when the resource is no longer at `version`. `idempotencyKey`: the same one when retrying the same change. */
    update(
      workspaceId: string,
      resourceId: string,
      version: number,
      patch: ResourcePatch,
      options: MutationOptions & { idempotencyKey?: string } = {},
    ): Promise<Resource> {
      return api.unwrap(
        http.PATCH("/api/v1/workspaces/{workspace_id}/resources/{resource_id}", {
          params: { path: ref(workspaceId, resourceId), header: change(version, options.idempotencyKey) },
          body: patch,
          signal: options.signal,
        }),
      );
    },

    /** Soft delete (restorable); `hard` deletes for good (workspace admins only). */
    async delete(workspaceId: string, resourceId: string, version: number, options: MutationOptions & { hard?: boolean } = {}): Promise<void> {
      await api.unwrap(
        http.DELETE("/api/v1/workspaces/{workspace_id}/resources/{resource_id}", {
          params: { path: ref(workspaceId, resourceId), query: options.hard ? { hard: true } : {}, header: change(version) },
          signal: options.signal,
        }),
      );
    },

    restore(workspaceId: string, resourceId: string, version: number, options: MutationOptions = {}): Promise<Resource> {
      return api.unwrap(
        http.POST("/api/v1/workspaces/{workspace_id}/resources/{resource_id}/restore", {
          params: { path: ref(workspaceId, resourceId), header: change(version) },
          signal: options.signal,
        }),
      );
    },
  };
}

export function workspaceReadsApi(api: ApiClient) {
  const { http } = api;
  return {
    get(workspaceId: string, options: MutationOptions = {}): Promise<Workspace> {
      return api.unwrap(http.GET("/api/v1/workspaces/{workspace_id}", { params: { path: { workspace_id: workspaceId } }, signal: options.signal }));
    },
    /** First 100 members (by email): enough to put names on presence avatars. */
    members(workspaceId: string, options: MutationOptions = {}): Promise<MemberPage> {
      return api.unwrap(
        http.GET("/api/v1/workspaces/{workspace_id}/members", {
          params: { path: { workspace_id: workspaceId }, query: { limit: 100 } },
          signal: options.signal,
        }),
      );
    },
  };
}

export type ResourcesApi = ReturnType<typeof resourcesApi>;

/** A change refused because the resource moved on: REST 412, RPC 409 with `details.reason = "stale_version"`. */
export function isStaleVersion(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as { code?: unknown; details?: Record<string, unknown> };
  return e.code === "precondition_failed" || (e.code === "conflict" && e.details?.reason === "stale_version");
}
