"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type ReactNode } from "react";
import type { HubEvent, UserPublic } from "@/lib/api/types";
import { RealtimeProvider, useChannel, useConnectionState } from "@/lib/realtime/react";
import type { Publication } from "@/lib/realtime/types";
import { describeEvent } from "@/lib/notifications";
import { workspaceKeys } from "@/lib/queries/keys";
import { applyUserEvent, asDomainEvent } from "@/lib/queries/live";
import { getServices } from "@/lib/services";
import { useToast } from "../toaster";
import { QueryProvider } from "./query-provider";
import { useSessionStore } from "./session-store-provider";

/**
 * The tab's single realtime client, held open while a signed-in page is
 * mounted (it sits inside SessionGate: connect on login, close on sign-out).
 * Also: the server-state cache (`QueryProvider`, dropped with the session),
 * the user's own channel as toasts and as updates of the cached list of
 * workspaces, and what to do when the hub ends the socket for good.
 */
export function RealtimeRoot({ children }: { children: ReactNode }) {
  const [client] = useState(() => getServices().realtime);
  return (
    <RealtimeProvider client={client}>
      <QueryProvider>
        <SessionEnforcer />
        <UserChannel />
        {children}
      </QueryProvider>
    </RealtimeProvider>
  );
}

/**
 * The hub closes a deactivated account's sockets with 4003 (no reconnect)
 * and a revoked session's with 4001; the client halts. Turn that into a
 * sign-out here, so an open page does not linger after its session ended.
 */
function SessionEnforcer() {
  const { halted } = useConnectionState();
  useEffect(() => {
    if (halted === null) return;
    const { session, realtime } = getServices();
    if (halted === "forbidden") {
      session.clear("deactivated");
    } else if (halted === "unauthorized") {
      // The hub kept refusing our tokens: ask the cookie once more, then give up.
      session
        .refresh()
        .then((token) => {
          if (token !== null) realtime.reconnect();
        })
        .catch(() => {});
    }
    // "signed_out": getToken said null, so the session already ended (and says why).
  }, [halted]);
  return null;
}

/** `user:<id>`: notifications for the signed-in user, shown as toasts. */
function UserChannel() {
  const user = useSessionStore((s) => s.user);
  const toast = useToast();
  const queryClient = useQueryClient();
  const channel = user ? `user:${user.id}` : null;

  useChannel<HubEvent>(channel, {
    onPublication(publication: Publication<HubEvent>) {
      const event = publication.data;
      const { session } = getServices();
      const before = session.state.user;
      const message = describeEvent(event, before, before?.id);
      if (event.type === "user.updated" && before && event.data.id === before.id) {
        const after = { ...before, ...(event.data as unknown as UserPublic) };
        session.setUser(after);
        // The access token carries the role: get one that says the new role.
        if (after.role !== before.role) session.refresh().catch(() => {});
      }
      if (message) toast(message);
      const domainEvent = asDomainEvent(event);
      if (domainEvent && before) applyUserEvent(queryClient, domainEvent, before.id);
    },
    onReload() {
      void queryClient.invalidateQueries({ queryKey: workspaceKeys.list() });
      // Missed events we cannot replay: read the account again.
      const { auth, session } = getServices();
      auth
        .me()
        .then((me) => session.setUser(me))
        .catch(() => {});
    },
  });
  return null;
}
