/**
 * Short names for the REST types the auth pages use. Every REST shape is
 * generated from the hub's OpenAPI document (`schema.d.ts`, `npm run sync:api`);
 * only the event envelope below is written here (the per-type events are
 * generated from the AsyncAPI document: `DomainEvent` in `../realtime/events`).
 */

import type { components } from "./schema";

type Schemas = components["schemas"];

export type Role = Schemas["Role"];
export type WorkspaceRole = Schemas["WorkspaceRole"];
export type UserPublic = Schemas["UserPublic"];
/** A browser (X-Requested-With: hubbub) gets the refresh token as a cookie instead of `refresh_token`. */
export type TokenResponse = Schemas["TokenPair"];
export type LoginRequest = Schemas["LoginParams"];
/** Password policy (server): ≥ 10 characters, not the email or its local part, not a common password. */
export type RegisterRequest = Schemas["RegisterParams"];
/** 202, the same for a new and a taken email (the difference is only in the mailbox). */
export type RegisterAccepted = Schemas["RegisterAccepted"];
export type VerifyEmailRequest = Schemas["VerifyEmailParams"];
export type PasswordResetRequest = Schemas["ResetRequestParams"];
export type PasswordResetConfirm = Schemas["ResetConfirmParams"];
export type UpdateMeRequest = Partial<Schemas["UpdateMeParams"]>;
export type ChangePasswordRequest = Schemas["ChangePasswordParams"];
/** `GET /users` query. */
export type ListUsersQuery = Partial<Schemas["ListUsersParams"]>;
export type UserPage = Schemas["UserPage"];
/** `PATCH /users/{user_id}`: at least one of the two. */
export type UpdateUserRequest = Partial<Schemas["UpdateUserParamsBody"]>;

/** A domain event as published on a channel (`hubbub/contracts/events.py`). */
export interface HubEvent<T = Record<string, unknown>> {
  id: string;
  type: string;
  channel: string;
  at: string;
  actor?: string | null;
  request_id?: string | null;
  data: T;
}

/**
 * A request body whose fields all have defaults, as the generated type wants
 * it. openapi-typescript marks a field with a default as always present, which
 * is true of replies only: in a request the hub fills in what is left out
 * (`PATCH /users/me {}` changes nothing). The one place this is asserted.
 */
export function requestBody<T extends object>(body: Partial<T>): T {
  return body as T;
}
