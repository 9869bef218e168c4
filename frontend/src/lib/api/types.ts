/**
 * PLACEHOLDER types for the hub's REST API, written by hand from the
 * architecture brief. They will be replaced by types generated from the hub's
 * OpenAPI document (`openapi-typescript <hub>/api/v1/openapi.json -o
 * src/lib/api/schema.d.ts`); keep this file small and do not grow it.
 */

export type Role = "admin" | "member";
export type WorkspaceRole = "owner" | "admin" | "member" | "viewer";

export interface UserPublic {
  id: string;
  email: string;
  display_name: string;
  role?: Role;
  is_active?: boolean;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  /** seconds */
  expires_in: number;
  user?: UserPublic;
  /** Ignored by the browser app: the refresh token lives in an httpOnly cookie. */
  refresh_token?: string;
}

export interface LoginRequest {
  email: string;
  password: string;
}

export interface RegisterRequest {
  email: string;
  password: string;
  display_name: string;
}

export interface PasswordResetRequest {
  email: string;
}

/** Field names unconfirmed until the OpenAPI document exists. */
export interface PasswordResetConfirm {
  token: string;
  password: string;
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
