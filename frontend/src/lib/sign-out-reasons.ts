import type { SignOutReason } from "./api/session";

/** What the login page says after a session ended (`/login/?reason=…`). */
export const SIGN_OUT_MESSAGES: Record<SignOutReason, string> = {
  logout: "You have signed out.",
  expired: "Your session has expired. Sign in again to continue.",
  revoked: "You were signed out because your session was ended elsewhere.",
  deactivated: "This account was deactivated by an administrator.",
};

export function isSignOutReason(value: string | null): value is SignOutReason {
  return value !== null && Object.hasOwn(SIGN_OUT_MESSAGES, value);
}

/** The login URL for a session that ended here; `next` only for same-site paths and not after a sign-out. */
export function loginUrl(reason: SignOutReason | null, here: string | null): string {
  const params = new URLSearchParams();
  if (here && reason !== "logout" && reason !== "deactivated") params.set("next", here);
  if (reason) params.set("reason", reason);
  const query = params.toString();
  return `/login/${query ? `?${query}` : ""}`;
}
