import type { ApiClient } from "./client";
import type { AuthSession } from "./session";
import type {
  LoginRequest,
  PasswordResetConfirm,
  PasswordResetRequest,
  RegisterRequest,
  TokenResponse,
  UserPublic,
} from "./types";

/** Auth endpoints (`/api/v1/auth/*`, `/users/me`). Cookie-setting calls use credentials: 'include'. */
export function authApi(api: ApiClient, session: AuthSession) {
  return {
    async login(body: LoginRequest): Promise<UserPublic | null> {
      const tokens = await api.post<TokenResponse>("/auth/login", body, { auth: false, credentials: "include" });
      session.accept(tokens);
      if (!tokens.user) session.setUser(await api.get<UserPublic>("/users/me"));
      return session.state.user;
    },
    register(body: RegisterRequest): Promise<UserPublic> {
      return api.post<UserPublic>("/auth/register", body, { auth: false });
    },
    async logout(): Promise<void> {
      try {
        await api.post("/auth/logout", undefined, { credentials: "include" });
      } finally {
        session.clear();
      }
    },
    requestPasswordReset(body: PasswordResetRequest): Promise<unknown> {
      return api.post("/auth/password-reset/request", body, { auth: false });
    },
    confirmPasswordReset(body: PasswordResetConfirm): Promise<unknown> {
      return api.post("/auth/password-reset/confirm", body, { auth: false });
    },
    me(): Promise<UserPublic> {
      return api.get<UserPublic>("/users/me");
    },
  };
}

export type AuthApi = ReturnType<typeof authApi>;
