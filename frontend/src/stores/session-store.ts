import { createStore } from "zustand/vanilla";
import type { SignOutReason } from "@/lib/api/session";
import type { UserPublic } from "@/lib/api/types";

export type SessionStatus = "unknown" | "authenticated" | "anonymous";

export interface SessionStoreState {
  status: SessionStatus;
  user: UserPublic | null;
  /** Why the last session ended (null on a fresh visit). */
  reason: SignOutReason | null;
}

export interface SessionStoreActions {
  signedIn(user: UserPublic | null): void;
  signedOut(reason?: SignOutReason | null): void;
}

export type SessionStore = SessionStoreState & SessionStoreActions;

export const initialSessionState: SessionStoreState = { status: "unknown", user: null, reason: null };

/** One store per provider (Zustand's Next.js guide): never a module-level store. */
export function createSessionStore(init: SessionStoreState = initialSessionState) {
  return createStore<SessionStore>()((set) => ({
    ...init,
    signedIn: (user) => set({ status: "authenticated", user, reason: null }),
    signedOut: (reason = null) => set({ status: "anonymous", user: null, reason }),
  }));
}

export type SessionStoreApi = ReturnType<typeof createSessionStore>;
