"use client";

import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { useStore } from "zustand";
import { getServices } from "@/lib/services";
import { createSessionStore, type SessionStore, type SessionStoreApi } from "@/stores/session-store";

const SessionStoreContext = createContext<SessionStoreApi | null>(null);

/** Holds the UI's view of the session (status, user); the token itself stays in AuthSession. */
export function SessionStoreProvider({ children }: { children: ReactNode }) {
  const [store] = useState(createSessionStore);

  useEffect(() => {
    const { session } = getServices();
    return session.onChange((state) => {
      if (state.authenticated) store.getState().signedIn(state.user);
      else store.getState().signedOut(state.reason);
    });
  }, [store]);

  return <SessionStoreContext.Provider value={store}>{children}</SessionStoreContext.Provider>;
}

export function useSessionStore<T>(selector: (state: SessionStore) => T): T {
  const store = useContext(SessionStoreContext);
  if (!store) throw new Error("useSessionStore must be used inside <SessionStoreProvider>");
  return useStore(store, selector);
}
