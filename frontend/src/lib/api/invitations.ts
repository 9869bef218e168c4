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
