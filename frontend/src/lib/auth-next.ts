import { safeNext } from "./forms";

/**
 * Where a visitor goes after signing in travels as `?next=` through sign-in, "Create
 * one", registration and back (an invitation link opened signed out must not be lost on
 * the way). Only a same-site path is ever followed (`safeNext`: no scheme, no `//host`,
 * no backslash, no control characters, never /login or /register).
 */

/** The invitation page (its token waits in this tab's sessionStorage). */
export const INVITATION_PAGE = "/invitations/";

/** `next` from a query value when it is a same-site path; null when absent or unsafe. */
export function nextParam(raw: string | null | undefined): string | null {
  const refused = "";
  const safe = safeNext(raw, refused);
  return safe === refused ? null : safe;
}

/** `path` with `?next=` when there is a safe one to keep. */
export function withNext(path: string, next: string | null | undefined): string {
  const kept = nextParam(next);
  return kept ? `${path}?next=${encodeURIComponent(kept)}` : path;
}
