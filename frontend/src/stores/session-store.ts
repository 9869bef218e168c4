import { createStore } from "zustand/vanilla";
import type { UserPublic } from "@/lib/api/types";

export type SessionStatus = "unknown" | "authenticated" | "anonymous";

export interface SessionStoreState {
  status: SessionStatus;
  user: UserPublic | null;
}

export interface SessionStoreActions {
  signedIn(user: UserPublic | null): void;
  signedOut(): void;
}

export type SessionStore = SessionStoreState & SessionStoreActions;

export const initialSessionState: SessionStoreState = { status: "unknown", user: null };

/** One store per provider (Zustand's Next.js guide): never a module-level store. */
export function createSessionStore(init: SessionStoreState = initialSessionState) {
  return createStore<SessionStore>()((set) => ({
    ...init,
    signedIn: (user) => set({ status: "authenticated", user }),
    signedOut: () => set({ status: "anonymous", user: null }),
  }));
}

export type SessionStoreApi = ReturnType<typeof createSessionStore>;
