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
    // Another user's session replaced this one (a refresh brought their tokens): the socket
    // still speaks for the previous user, so it starts over now, not at its token's expiry.
    session.onChange(({ user }) => {
      const socketUser = realtime.getSnapshot().user;
      if (user && socketUser && user.id !== socketUser.id) realtime.restart();
    });
    services = { session, api, auth: authApi(api, session), users: usersApi(api), realtime };
  }
  return services;
}
