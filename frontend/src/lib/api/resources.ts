import type { ApiClient } from "./client";
import type { components } from "./schema";

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

/** Repeatable parameters (`tag`) need repeated keys, which `ApiClient.url` does not do: build the query here. */
export function listQueryString(query: ResourceListQuery = {}): string {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) for (const v of value) qs.append(key, String(v));
    else qs.set(key, String(value));
  }
  const text = qs.toString();
  return text ? `?${text}` : "";
}

const ws = (workspaceId: string) => `/workspaces/${encodeURIComponent(workspaceId)}`;
const one = (workspaceId: string, resourceId: string) => `${ws(workspaceId)}/resources/${encodeURIComponent(resourceId)}`;

export interface MutationOptions {
  signal?: AbortSignal;
}

export function resourcesApi(api: ApiClient, newKey: () => string = () => crypto.randomUUID()) {
  return {
    list(workspaceId: string, query: ResourceListQuery = {}, options: MutationOptions = {}): Promise<ResourcePage> {
      return api.get<ResourcePage>(`${ws(workspaceId)}/resources${listQueryString(query)}`, { signal: options.signal });
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
      const query = options.includeDeleted ? "?include_deleted=true" : "";
      return api.get<Resource>(`${one(workspaceId, resourceId)}${query}`, { signal: options.signal });
    },

    /** `idempotencyKey`: pass the same one when retrying the same create. */
    create(workspaceId: string, body: ResourceCreateInput, options: MutationOptions & { idempotencyKey?: string } = {}): Promise<Resource> {
      return api.post<Resource>(`${ws(workspaceId)}/resources`, body, {
        idempotencyKey: options.idempotencyKey ?? newKey(),
        signal: options.signal,
      });
    },

    /** 412 `precondition_failed` when the resource is no longer at `version`. */
    update(workspaceId: string, resourceId: string, version: number, patch: ResourcePatch, options: MutationOptions = {}): Promise<Resource> {
      return api.patch<Resource>(one(workspaceId, resourceId), patch, {
        ifMatch: etag(version),
        idempotencyKey: newKey(),
        signal: options.signal,
      });
    },

    /** Soft delete (restorable); `hard` deletes for good (workspace admins only). */
    async delete(workspaceId: string, resourceId: string, version: number, options: MutationOptions & { hard?: boolean } = {}): Promise<void> {
      const query = options.hard ? "?hard=true" : "";
      await api.delete<void>(`${one(workspaceId, resourceId)}${query}`, {
        ifMatch: etag(version),
        idempotencyKey: newKey(),
        signal: options.signal,
      });
    },

    restore(workspaceId: string, resourceId: string, version: number, options: MutationOptions = {}): Promise<Resource> {
      return api.post<Resource>(`${one(workspaceId, resourceId)}/restore`, {}, {
        ifMatch: etag(version),
        idempotencyKey: newKey(),
        signal: options.signal,
      });
    },
  };
}

export function workspaceReadsApi(api: ApiClient) {
  return {
    get(workspaceId: string, options: MutationOptions = {}): Promise<Workspace> {
      return api.get<Workspace>(ws(workspaceId), { signal: options.signal });
    },
    /** First 100 members (by email): enough to put names on presence avatars. */
    members(workspaceId: string, options: MutationOptions = {}): Promise<MemberPage> {
      return api.get<MemberPage>(`${ws(workspaceId)}/members`, { query: { limit: 100 }, signal: options.signal });
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
