import type { ApiClient } from "./client";
import type { AuthSession, SignOutReason } from "./session";
import type {
  ChangePasswordRequest,
  ListUsersQuery,
  LoginRequest,
  PasswordResetConfirm,
  PasswordResetRequest,
  RegisterAccepted,
  RegisterRequest,
  TokenResponse,
  UpdateMeRequest,
  UpdateUserRequest,
  UserPage,
  UserPublic,
  VerifyEmailRequest,
} from "./types";
import { requestBody } from "./types";

/**
 * Accounts: `/api/v1/auth/*` and `/users/*` (docs/auth.md). Calls that send
 * or replace the refresh cookie use `credentials: 'include'` and run under
 * the session's cookie lock, never beside a refresh.
 */
export function authApi(api: ApiClient, session: AuthSession) {
  const { http } = api;
  const anonymous = api.via({ auth: false });
  return {
    /** 401 → HubError unauthorized ("wrong email or password"); 429 → rate_limited with retryAfter. */
    login(body: LoginRequest): Promise<UserPublic> {
      return session.exclusive(async () => {
        const tokens: TokenResponse = await api.unwrap(http.POST("/api/v1/auth/login", { body, fetch: anonymous, credentials: "include" }));
        session.accept(tokens);
        return tokens.user;
      });
    },
    /** 202 whether the email was free or taken: the account exists, unverified, or the owner got a note. */
    register(body: RegisterRequest): Promise<RegisterAccepted> {
      return api.unwrap(http.POST("/api/v1/auth/register", { body, fetch: anonymous }));
    },
    /** The mailed link's token; 204. Invalid, used or expired → 400 bad_request. */
    async verifyEmail(body: VerifyEmailRequest): Promise<void> {
      await api.unwrap(http.POST("/api/v1/auth/verify-email", { body, fetch: anonymous }));
    },
    /** A new link for the signed-in user; 409 when the address is verified already, 429 when asked too often. */
    resendVerification(): Promise<{ detail: string }> {
      return api.unwrap(http.POST("/api/v1/auth/verify-email/resend"));
    },
    /**
     * End this session (named by the cookie, else by the access token);
     * signed out locally whatever the hub answers. Never refreshes: inside the
     * cookie lock a refresh would wait for the logout, and the logout for it.
     */
    async logout(reason: SignOutReason = "logout"): Promise<void> {
      const headers = bearer(session.peekToken());
      try {
        await session.exclusive(() => api.unwrap(http.POST("/api/v1/auth/logout", { headers, fetch: anonymous, credentials: "include" })));
      } finally {
        session.clear(reason);
      }
    },
    /**
     * End every session of this user, this one included (other tabs' sockets close with 4001).
     * Signed out locally whatever happens, also when no token can be had first (a stale one, the hub unreachable).
     */
    async logoutEverywhere(): Promise<void> {
      try {
        const headers = bearer(await session.getToken({ forceRefresh: false }));
        await session.exclusive(() => api.unwrap(http.POST("/api/v1/auth/logout-all", { headers, fetch: anonymous, credentials: "include" })));
      } finally {
        session.clear("logout");
      }
    },
    requestPasswordReset(body: PasswordResetRequest): Promise<{ detail: string }> {
      return api.unwrap(http.POST("/api/v1/auth/password-reset/request", { body, fetch: anonymous }));
    },
    async confirmPasswordReset(body: PasswordResetConfirm): Promise<void> {
      await api.unwrap(http.POST("/api/v1/auth/password-reset/confirm", { body, fetch: anonymous }));
    },
    me(): Promise<UserPublic> {
      return api.unwrap(http.GET("/api/v1/users/me"));
    },
    async updateMe(body: UpdateMeRequest): Promise<UserPublic> {
      const user = await api.unwrap(http.PATCH("/api/v1/users/me", { body: requestBody(body) }));
      session.setUser(user);
      return user;
    },
    /** Ends every other session of the user (this one stays). */
    async changePassword(body: ChangePasswordRequest): Promise<void> {
      await api.unwrap(http.POST("/api/v1/users/me/password", { body }));
    },
  };
}

/** Admin-only user management; the hub checks the role on every call. */
export function usersApi(api: ApiClient) {
  const { http } = api;
  return {
    list(query: ListUsersQuery = {}, signal?: AbortSignal): Promise<UserPage> {
      return api.unwrap(http.GET("/api/v1/users", { params: { query }, signal }));
    },
    get(id: string): Promise<UserPublic> {
      return api.unwrap(http.GET("/api/v1/users/{user_id}", { params: { path: { user_id: id } } }));
    },
    update(id: string, body: UpdateUserRequest): Promise<UserPublic> {
      return api.unwrap(http.PATCH("/api/v1/users/{user_id}", { params: { path: { user_id: id } }, body: requestBody(body) }));
    },
  };
}

function bearer(token: string | null): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export type AuthApi = ReturnType<typeof authApi>;
export type UsersApi = ReturnType<typeof usersApi>;
