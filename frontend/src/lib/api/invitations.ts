import type { ApiClient } from "./client";
import type { components } from "./schema";

/** What a pending invitation is for: workspace, inviter, invited email, role, expiry. */
export type InvitationPreview = components["schemas"]["InvitationPreview"];

/**
 * `POST /invitations/preview {token}` (`invitations.preview`): anyone holding the
 * mailed token may read it, signed in or not, so no bearer token is sent (a signed-out
 * visitor has none, and no refresh is needed to ask). The token travels in the body,
 * never in a URL. An unknown, answered, replaced, revoked or expired token is one 404;
 * the hub limits previews per IP (429).
 */
export function previewInvitation(api: ApiClient, token: string, options: { signal?: AbortSignal } = {}): Promise<InvitationPreview> {
  return api.unwrap(api.http.POST("/api/v1/invitations/preview", { body: { token }, fetch: api.via({ auth: false }), signal: options.signal }));
}

/** A pending invitation to the signed-in user's (confirmed) email. */
export type MyInvitation = components["schemas"]["MyInvitation"];
export type InvitationAnswer = components["schemas"]["Accepted"];

/**
 * `GET /invitations/mine` (`invitations.mine`): pending invitations to my email, newest
 * first, without workspaces I am in already. An unconfirmed address gets 403
 * `email_unverified` (whoever registered it first learns nothing).
 */
export async function myInvitations(api: ApiClient, options: { signal?: AbortSignal } = {}): Promise<MyInvitation[]> {
  const list = await api.unwrap(api.http.GET("/api/v1/invitations/mine", { signal: options.signal }));
  return list.items;
}

/** `POST /invitations/mine/{id}/accept`: join, by the invitation's id (no token needed). */
export function acceptMyInvitation(api: ApiClient, invitationId: string, idempotencyKey: string = crypto.randomUUID()): Promise<InvitationAnswer> {
  return api.unwrap(
    api.http.POST("/api/v1/invitations/mine/{invitation_id}/accept", {
      params: { path: { invitation_id: invitationId }, header: { "Idempotency-Key": idempotencyKey } },
    }),
  );
}

/** `POST /invitations/mine/{id}/decline`. */
export async function declineMyInvitation(api: ApiClient, invitationId: string, idempotencyKey: string = crypto.randomUUID()): Promise<void> {
  await api.unwrap(
    api.http.POST("/api/v1/invitations/mine/{invitation_id}/decline", {
      params: { path: { invitation_id: invitationId }, header: { "Idempotency-Key": idempotencyKey } },
    }),
  );
}
