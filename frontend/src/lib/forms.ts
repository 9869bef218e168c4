import type { FieldValues, Path, UseFormSetError } from "react-hook-form";
import { describeError } from "./error-messages";
import { HubError, fieldErrorMap } from "./errors";

/**
 * Put a failed submit's errors on the form: field errors of a
 * `validation_failed` reply go to their fields (when the form has them),
 * everything else to `root.server`.
 */
export function applyServerErrors<T extends FieldValues>(
  error: unknown,
  setError: UseFormSetError<T>,
  fields: readonly Path<T>[],
): void {
  if (error instanceof HubError) {
    const byField = fieldErrorMap(error);
    const rest: string[] = [];
    for (const [name, message] of Object.entries(byField)) {
      if ((fields as readonly string[]).includes(name)) setError(name as Path<T>, { type: "server", message });
      else rest.push(message);
    }
    if (Object.keys(byField).length > 0 && rest.length === 0) return;
    setError("root.server", { type: error.code, message: rest.length ? rest.join(" ") : describeError(error) });
    return;
  }
  setError("root.server", { type: "unknown", message: describeError(error) });
}

/** A same-site path to go back to after signing in; anything else becomes the default. */
export function safeNext(next: string | null, fallback = "/workspaces/"): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return fallback;
  return next;
}
