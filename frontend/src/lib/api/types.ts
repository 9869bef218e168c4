/**
 * Hand-written REST types for accounts and auth, copied from the hub's
 * contracts (`hubbub/contracts/api/{auth,users}.py`) because the hub does not
 * serve its OpenAPI document yet. When it does: `npm run fetch:api`,
 * `npm run gen:api`, then replace these with aliases of the generated
 * `components["schemas"][...]` in `schema.d.ts` and delete this file's bodies.
 * Keep this file to what the auth pages use; do not grow it.
 */

export type Role = "admin" | "member";
export type WorkspaceRole = "owner" | "admin" | "member" | "viewer";

/** `UserPublic` */
export interface UserPublic {
  id: string;
  email: string;
  display_name: string;
  role: Role;
  is_active: boolean;
  /** ISO 8601 */
  created_at: string;
  last_login_at?: string | null;
}

/** `TokenPair`; a browser (X-Requested-With: hubbub) gets the refresh token as a cookie instead. */
export interface TokenResponse {
  access_token: string;
  token_type: "bearer";
  /** seconds */
  expires_in: number;
  refresh_expires_in?: number;
  /** Absent for the browser: it lives in the httpOnly cookie. */
  refresh_token?: string | null;
  user: UserPublic;
}

export interface LoginRequest {
  email: string;
  password: string;
}

/** Password policy (server): ≥ 10 characters, not the email or its local part, not a common password. */
export interface RegisterRequest {
  email: string;
  password: string;
  display_name: string;
}

export interface PasswordResetRequest {
  email: string;
}

export interface PasswordResetConfirm {
  token: string;
  new_password: string;
}

export interface UpdateMeRequest {
  display_name?: string | null;
}

export interface ChangePasswordRequest {
  current_password: string;
  new_password: string;
}

/** `GET /users` query. */
export interface ListUsersQuery {
  q?: string;
  role?: Role;
  is_active?: boolean;
  /** 1–200, default 50 */
  limit?: number;
  cursor?: string;
}

export interface UserPage {
  items: UserPublic[];
  next_cursor?: string | null;
}

/** `PATCH /users/{user_id}`: at least one of the two. */
export interface UpdateUserRequest {
  role?: Role;
  is_active?: boolean;
}

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

export interface Workspace {
  id: string;
  name: string;
  role?: WorkspaceRole;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}
