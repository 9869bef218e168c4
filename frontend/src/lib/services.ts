import { env } from "./env";
import { ApiClient } from "./api/client";
import { authApi, usersApi, type AuthApi, type UsersApi } from "./api/auth";
import { AuthSession } from "./api/session";
import { RealtimeClient } from "./realtime/client";

export interface Services {
  session: AuthSession;
  api: ApiClient;
  auth: AuthApi;
  users: UsersApi;
  realtime: RealtimeClient;
}

let services: Services | null = null;

/**
 * The per-tab singletons: one token holder, one API client, one realtime
 * socket. Browser only (the static export renders pages at build time, where
 * nothing here may run).
 */
export function getServices(): Services {
  if (typeof window === "undefined") throw new Error("getServices() is browser-only");
  if (!services) {
    const session = new AuthSession({ baseUrl: env.apiBase });
    const api = new ApiClient({ baseUrl: env.apiBase, tokens: session });
    const realtime = new RealtimeClient({ getToken: session.getToken, url: env.wsUrl });
    followSessionUser(session, realtime);
    services = { session, api, auth: authApi(api, session), users: usersApi(api), realtime };
  }
  return services;
}

/** What {@link followSessionUser} needs of the session and the socket. */
export interface SessionUser {
  readonly state: { readonly user: { readonly id: string } | null };
  onChange(listener: () => void): unknown;
}
export interface SocketUser {
  getSnapshot(): { readonly user: { readonly id: string } | null };
  onStateChange(listener: () => void): unknown;
  restart(): void;
}

/**
 * Keep the socket speaking for the session's user. Another user's session replaced this
 * one (a refresh brought their tokens), or the socket's `connect` answered for the
 * previous user while the new one signed in: it starts over now, not at its token's
 * expiry. Once per socket user that differs, so tokens that still say otherwise cannot
 * make it start over and over.
 */
export function followSessionUser(session: SessionUser, realtime: SocketUser): void {
  let restartedFor: string | null = null;
  const check = () => {
    const user = session.state.user;
    const socketUser = realtime.getSnapshot().user;
    if (!user || !socketUser || user.id === socketUser.id) {
      if (user && socketUser) restartedFor = null; // they agree: the next switch counts
      return;
    }
    if (restartedFor === socketUser.id) return;
    restartedFor = socketUser.id;
    realtime.restart();
  };
  session.onChange(check);
  realtime.onStateChange(check);
}
