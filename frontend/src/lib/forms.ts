import type { FieldValues, Path, UseFormSetError } from "react-hook-form";
import { describeError, sentence } from "./error-messages";
import { HubError, fieldErrorMap } from "./errors";

export interface ServerErrorOptions<T extends FieldValues> {
  /** Server field name → form field name, e.g. `{ new_password: "password" }`. */
  aliases?: Record<string, Path<T>>;
  /** A message for the whole form instead of the default one (e.g. 401 on login). */
  rootMessage?: (error: HubError) => string | undefined;
}

/**
 * Put a failed submit's errors on the form: field errors of a
 * `validation_failed` reply (and single-field errors with `details.field`, like
 * 409 on a taken email) go to their fields when the form has them, everything
 * else to `root.server`.
 */
export function applyServerErrors<T extends FieldValues>(
  error: unknown,
  setError: UseFormSetError<T>,
  fields: readonly Path<T>[],
  options: ServerErrorOptions<T> = {},
): void {
  if (error instanceof HubError) {
    const byField = fieldErrorMap(error);
    const rest: string[] = [];
    let placed = 0;
    for (const [serverName, message] of Object.entries(byField)) {
      const name = options.aliases?.[serverName] ?? serverName;
      if ((fields as readonly string[]).includes(name)) {
        setError(name as Path<T>, { type: "server", message: sentence(message) });
        placed += 1;
      } else {
        rest.push(sentence(serverName === "_" ? message : `${serverName}: ${message}`));
      }
    }
    if (placed > 0 && rest.length === 0) return;
    const root = options.rootMessage?.(error) ?? (rest.length ? rest.join(" ") : describeError(error));
    setError("root.server", { type: error.code, message: root });
    return;
  }
  setError("root.server", { type: "unknown", message: describeError(error) });
}

/**
 * A same-site path to go back to after signing in; anything else becomes the
 * default. Only absolute paths on this origin: no scheme, no `//host`, no
 * backslashes (browsers read `/\host` as `//host`), no control characters.
 * What is returned is checked after the URL parser has resolved dot segments
 * (`/..//host`, `/%2e%2e//host` come out as `//host`), not only the raw input.
 */
export function safeNext(next: string | null | undefined, fallback = "/workspaces/"): string {
  if (!next || next.length > 2000 || !sameSitePath(next)) return fallback;
  try {
    const base = "http://same.invalid";
    const url = new URL(next, base);
    if (url.origin !== base) return fallback;
    if (url.pathname.startsWith("/login") || url.pathname.startsWith("/register")) return fallback;
    const path = `${url.pathname}${url.search}${url.hash}`;
    return sameSitePath(path) ? path : fallback;
  } catch {
    return fallback;
  }
}

/** Starts with one `/` (not `//` or `/\`), no backslash, no control character. */
function sameSitePath(path: string): boolean {
  return path.startsWith("/") && !path.startsWith("//") && !path.includes("\\") && !/[\u0000-\u001f\u007f]/.test(path);
}
