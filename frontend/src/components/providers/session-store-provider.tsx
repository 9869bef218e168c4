"use client";

import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { useStore } from "zustand";
import type { SessionState } from "@/lib/api/session";
import { getServices } from "@/lib/services";
import { createSessionStore, type SessionStore, type SessionStoreApi } from "@/stores/session-store";

const SessionStoreContext = createContext<SessionStoreApi | null>(null);

/** Holds the UI's view of the session (status, user); the token itself stays in AuthSession. */
export function SessionStoreProvider({ children }: { children: ReactNode }) {
  const [store] = useState(createSessionStore);

  useEffect(() => {
    const { session } = getServices();
    const sync = (state: SessionState) => {
      if (state.authenticated) store.getState().signedIn(state.user);
      else store.getState().signedOut(state.reason);
    };
    // A session that exists already (signed in before this mounted) counts at once;
    // "no token yet" stays "unknown" until SessionGate has asked the cookie.
    const now = session.state;
    if (now.authenticated || now.reason !== null) sync(now);
    return session.onChange(sync);
  }, [store]);

  return <SessionStoreContext.Provider value={store}>{children}</SessionStoreContext.Provider>;
}

export function useSessionStore<T>(selector: (state: SessionStore) => T): T {
  const store = useContext(SessionStoreContext);
  if (!store) throw new Error("useSessionStore must be used inside <SessionStoreProvider>");
  return useStore(store, selector);
}
