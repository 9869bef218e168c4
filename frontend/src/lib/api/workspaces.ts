import type { ApiClient } from "./client";
import type { components } from "./schema";

/**
 * Workspaces, members, invitations and the activity log (`docs/domain.md`).
 * Every shape is the generated one from `openapi.json` (`npm run sync:api`).
 */
type Schemas = components["schemas"];

export type MyWorkspace = Schemas["MyWorkspace"];
export type WorkspacePage = Schemas["WorkspacePage"];
export type WorkspaceCreate = Schemas["WorkspaceCreate"];
export type WorkspaceUpdateBody = Schemas["WorkspaceUpdateBody"];
export type WorkspaceRole = Schemas["WorkspaceRole"];
export type MemberPublic = Schemas["MemberPublic"];
export type MemberPage = Schemas["MemberPage"];
export type MemberAddBody = Schemas["MemberAddBody"];
export type MemberAdded = Schemas["MemberAdded"];
export type MemberUpdateBody = Schemas["MemberUpdateBody"];
export type InvitationCreateBody = Schemas["InvitationCreateBody"];
export type InvitationPublic = Schemas["InvitationPublic"];
export type InvitationPage = Schemas["InvitationPage"];
export type InvitationAccepted = Schemas["Accepted"];
export type ActivityPublic = Schemas["ActivityPublic"];
export type ActivityPage = Schemas["ActivityPage"];

/** Highest to lowest; the order the role pickers show. */
export const WORKSPACE_ROLES: readonly WorkspaceRole[] = ["owner", "admin", "member", "viewer"];

const RANK: Record<WorkspaceRole, number> = { viewer: 0, member: 1, admin: 2, owner: 3 };

/** `role` is at least `needed` (owner > admin > member > viewer). */
export function hasRole(role: WorkspaceRole | null | undefined, needed: WorkspaceRole): boolean {
  return role != null && RANK[role] >= RANK[needed];
}

export interface PageQuery {
  limit?: number;
  cursor?: string | null;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface MutationOptions extends CallOptions {
  /** `Idempotency-Key`; a new one per call unless given (retry the same change with the same key). */
  idempotencyKey?: string;
}

/** `If-Match` for a version: the hub's ETags are the quoted version number. */
export function versionTag(version: number): string {
  return `"${version}"`;
}

function newKey(): string {
  return globalThis.crypto.randomUUID();
}

export function workspacesApi(api: ApiClient) {
  const { http } = api;
  const at = (workspace_id: string) => ({ path: { workspace_id } });
  /** Headers of a mutation: a fresh `Idempotency-Key` unless the caller retries with its own, and `If-Match` for a version. */
  const mutation = (options: MutationOptions, version?: number) => ({
    "Idempotency-Key": options.idempotencyKey ?? newKey(),
    ...(version === undefined ? {} : { "If-Match": versionTag(version) }),
  });
  return {
    // ------------------------------------------------------------ workspaces
    /** Newest first; `next_cursor` null on the last page. */
    list(query: PageQuery = {}, options: CallOptions = {}): Promise<WorkspacePage> {
      return api.unwrap(http.GET("/api/v1/workspaces", { params: { query }, signal: options.signal }));
    },
    get(id: string, options: CallOptions = {}): Promise<MyWorkspace> {
      return api.unwrap(http.GET("/api/v1/workspaces/{workspace_id}", { params: at(id), signal: options.signal }));
    },
    /** 201; the caller becomes its owner. 422 names the field (`name`). */
    create(body: WorkspaceCreate, options: MutationOptions = {}): Promise<MyWorkspace> {
      return api.unwrap(http.POST("/api/v1/workspaces", { params: { header: mutation(options) }, body, signal: options.signal }));
    },
    /** Owner only. `version` is the one the caller saw: a newer one on the hub → 412 `precondition_failed`. */
    rename(id: string, version: number, body: WorkspaceUpdateBody, options: MutationOptions = {}): Promise<MyWorkspace> {
      return api.unwrap(
        http.PATCH("/api/v1/workspaces/{workspace_id}", { params: { ...at(id), header: mutation(options, version) }, body, signal: options.signal }),
      );
    },
    /** Owner only; 204. Same `If-Match` rule as rename. */
    async remove(id: string, version: number, options: MutationOptions = {}): Promise<void> {
      await api.unwrap(http.DELETE("/api/v1/workspaces/{workspace_id}", { params: { ...at(id), header: mutation(options, version) }, signal: options.signal }));
    },

    // ------------------------------------------------------------ members
    /** By email. */
    members(id: string, query: PageQuery & { role?: WorkspaceRole } = {}, options: CallOptions = {}): Promise<MemberPage> {
      return api.unwrap(http.GET("/api/v1/workspaces/{workspace_id}/members", { params: { ...at(id), query }, signal: options.signal }));
    },
    /** Admin. Always an invitation the person accepts (`{status: "invited", invitation}`), whether or not the email has an account. */
    addMember(id: string, body: MemberAddBody, options: MutationOptions = {}): Promise<MemberAdded> {
      return api.unwrap(
        http.POST("/api/v1/workspaces/{workspace_id}/members", { params: { ...at(id), header: mutation(options) }, body, signal: options.signal }),
      );
    },
    /** Admin (owner for the owner role). The last owner cannot be demoted: 409. */
    updateMember(id: string, userId: string, body: MemberUpdateBody, options: MutationOptions = {}): Promise<MemberPublic> {
      return api.unwrap(
        http.PATCH("/api/v1/workspaces/{workspace_id}/members/{user_id}", {
          params: { path: { workspace_id: id, user_id: userId }, header: mutation(options) },
          body,
          signal: options.signal,
        }),
      );
    },
    /** Admin; 204. The last owner cannot be removed: 409. */
    async removeMember(id: string, userId: string, options: MutationOptions = {}): Promise<void> {
      await api.unwrap(
        http.DELETE("/api/v1/workspaces/{workspace_id}/members/{user_id}", {
          params: { path: { workspace_id: id, user_id: userId }, header: mutation(options) },
          signal: options.signal,
        }),
      );
    },
    /** Any member; 204. The last owner cannot leave: 409. */
    async leave(id: string, options: MutationOptions = {}): Promise<void> {
      await api.unwrap(http.POST("/api/v1/workspaces/{workspace_id}/leave", { params: { ...at(id), header: mutation(options) }, signal: options.signal }));
    },

    // ------------------------------------------------------------ invitations
    /** Admin; 409 when the email's account is already a member. */
    invite(id: string, body: InvitationCreateBody, options: MutationOptions = {}): Promise<InvitationPublic> {
      return api.unwrap(
        http.POST("/api/v1/workspaces/{workspace_id}/invitations", { params: { ...at(id), header: mutation(options) }, body, signal: options.signal }),
      );
    },
    /** Pending, unexpired invitations, by email; any member. */
    invitations(id: string, query: PageQuery = {}, options: CallOptions = {}): Promise<InvitationPage> {
      return api.unwrap(http.GET("/api/v1/workspaces/{workspace_id}/invitations", { params: { ...at(id), query }, signal: options.signal }));
    },
    /** Admin (owner for an owner invitation); 204. Its link stops working; no longer pending → 404. */
    async revokeInvitation(id: string, invitationId: string, options: MutationOptions = {}): Promise<void> {
      await api.unwrap(
        http.DELETE("/api/v1/workspaces/{workspace_id}/invitations/{invitation_id}", {
          params: { path: { workspace_id: id, invitation_id: invitationId }, header: mutation(options) },
          signal: options.signal,
        }),
      );
    },
    /** Only the invited email's account (else 403); unknown, used, revoked or expired token → 404. */
    acceptInvitation(token: string, options: MutationOptions = {}): Promise<InvitationAccepted> {
      return api.unwrap(http.POST("/api/v1/invitations/accept", { params: { header: mutation(options) }, body: { token }, signal: options.signal }));
    },
    async declineInvitation(token: string, options: MutationOptions = {}): Promise<void> {
      await api.unwrap(http.POST("/api/v1/invitations/decline", { params: { header: mutation(options) }, body: { token }, signal: options.signal }));
    },

    // ------------------------------------------------------------ activity
    /** Newest first (by id). */
    activity(
      id: string,
      query: PageQuery & { subject_id?: string; actor_id?: string } = {},
      options: CallOptions = {},
    ): Promise<ActivityPage> {
      return api.unwrap(http.GET("/api/v1/workspaces/{workspace_id}/activity", { params: { ...at(id), query }, signal: options.signal }));
    },
  };
}

export type WorkspacesApi = ReturnType<typeof workspacesApi>;

const cache = new WeakMap<ApiClient, WorkspacesApi>();

/** One `WorkspacesApi` per `ApiClient` (the tab's, from `getServices().api`). */
export function workspacesFor(api: ApiClient): WorkspacesApi {
  let found = cache.get(api);
  if (!found) {
    found = workspacesApi(api);
    cache.set(api, found);
  }
  return found;
}
