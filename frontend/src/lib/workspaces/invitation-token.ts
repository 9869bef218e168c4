/**
 * The invitation mail links to `/invitations#token=…` (handlers/workspaces/invitations.py):
 * the token travels in the fragment, never in a server log or a Referer. A
 * signed-out visitor goes through /login first, and `next` keeps only path and
 * query, so the token waits in this tab's sessionStorage meanwhile.
 */
export const INVITATION_TOKEN_KEY = "hubbub-invitation-token";

/** `#token=…` (or `?token=…`), trimmed; null when the address has none. */
export function readInvitationToken(location: Pick<Location, "hash" | "search">): string | null {
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
  const token = fromHash ?? new URLSearchParams(location.search).get("token");
  return token && token.trim() ? token.trim() : null;
}

type Store = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/** Move a token from the address bar into `store` (and out of the address and history). */
export function captureInvitationToken(win: Pick<Window, "location" | "history">, store: Store | null): string | null {
  const token = readInvitationToken(win.location);
  if (!token) return null;
  try {
    store?.setItem(INVITATION_TOKEN_KEY, token);
  } catch {
    // storage refused (private mode quotas): the page still has it while it stays open
  }
  win.history.replaceState(win.history.state, "", `${win.location.pathname}${win.location.search.replace(/([?&])token=[^&]*&?/, "$1").replace(/[?&]$/, "")}`);
  return token;
}

export function storedInvitationToken(store: Store | null): string | null {
  try {
    return store?.getItem(INVITATION_TOKEN_KEY) ?? null;
  } catch {
    return null;
  }
}

/** The token is single-use: forget it once answered. */
export function forgetInvitationToken(store: Store | null): void {
  try {
    store?.removeItem(INVITATION_TOKEN_KEY);
  } catch {
    // nothing to do
  }
}

export function sessionStore(): Store | null {
  try {
    return typeof window === "undefined" ? null : window.sessionStorage;
  } catch {
    return null;
  }
}
