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

/**
 * Accounts: `/api/v1/auth/*` and `/users/*` (docs/auth.md). Calls that send
 * or replace the refresh cookie use `credentials: 'include'` and run under
 * the session's cookie lock, never beside a refresh.
 */
export function authApi(api: ApiClient, session: AuthSession) {
  return {
    /** 401 → HubError unauthorized ("wrong email or password"); 429 → rate_limited with retryAfter. */
    login(body: LoginRequest): Promise<UserPublic> {
      return session.exclusive(async () => {
        const tokens = await api.post<TokenResponse>("/auth/login", body, { auth: false, credentials: "include" });
        session.accept(tokens);
        return tokens.user;
      });
    },
    /** 202 whether the email was free or taken: the account exists, unverified, or the owner got a note. */
    register(body: RegisterRequest): Promise<RegisterAccepted> {
      return api.post<RegisterAccepted>("/auth/register", body, { auth: false });
    },
    /** The mailed link's token; 204. Invalid, used or expired → 400 bad_request. */
    verifyEmail(body: VerifyEmailRequest): Promise<void> {
      return api.post("/auth/verify-email", body, { auth: false });
    },
    /** A new link for the signed-in user; 409 when the address is verified already, 429 when asked too often. */
    resendVerification(): Promise<{ detail: string }> {
      return api.post("/auth/verify-email/resend");
    },
    /**
     * End this session (named by the cookie, else by the access token);
     * signed out locally whatever the hub answers. Never refreshes: inside the
     * cookie lock a refresh would wait for the logout, and the logout for it.
     */
    async logout(reason: SignOutReason = "logout"): Promise<void> {
      const headers = bearer(session.peekToken());
      try {
        await session.exclusive(() => api.post("/auth/logout", undefined, { auth: false, headers, credentials: "include" }));
      } finally {
        session.clear(reason);
      }
    },
    /** End every session of this user, this one included (other tabs' sockets close with 4001). */
    async logoutEverywhere(): Promise<void> {
      const headers = bearer(await session.getToken({ forceRefresh: false }));
      try {
        await session.exclusive(() => api.post("/auth/logout-all", undefined, { auth: false, headers, credentials: "include" }));
      } finally {
        session.clear("logout");
      }
    },
    requestPasswordReset(body: PasswordResetRequest): Promise<{ detail: string }> {
      return api.post("/auth/password-reset/request", body, { auth: false });
    },
    confirmPasswordReset(body: PasswordResetConfirm): Promise<void> {
      return api.post("/auth/password-reset/confirm", body, { auth: false });
    },
    me(): Promise<UserPublic> {
      return api.get<UserPublic>("/users/me");
    },
    async updateMe(body: UpdateMeRequest): Promise<UserPublic> {
      const user = await api.patch<UserPublic>("/users/me", body);
      session.setUser(user);
      return user;
    },
    /** Ends every other session of the user (this one stays). */
    changePassword(body: ChangePasswordRequest): Promise<void> {
      return api.post("/users/me/password", body);
    },
  };
}

/** Admin-only user management; the hub checks the role on every call. */
export function usersApi(api: ApiClient) {
  return {
    list(query: ListUsersQuery = {}, signal?: AbortSignal): Promise<UserPage> {
      return api.get<UserPage>("/users", { query: { ...query }, signal });
    },
    get(id: string): Promise<UserPublic> {
      return api.get<UserPublic>(`/users/${encodeURIComponent(id)}`);
    },
    update(id: string, body: UpdateUserRequest): Promise<UserPublic> {
      return api.patch<UserPublic>(`/users/${encodeURIComponent(id)}`, body);
    },
  };
}

function bearer(token: string | null): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export type AuthApi = ReturnType<typeof authApi>;
export type UsersApi = ReturnType<typeof usersApi>;
