import { HubError } from "./errors";

/**
 * `text` ending in exactly one full stop: one is added only when it does not end a
 * sentence already — also behind a closing quote or bracket (`… “Ann B.”`, `(see above.)`)
 * or an ellipsis. Names are the user's text and may end in a period ("Ann B."): a message
 * that ends with one must not read "Ann B..".
 */
export function endSentence(text: string): string {
  const trimmed = text.trimEnd();
  if (!trimmed) return trimmed;
  return /[.!?…][)\]"'”’»]*$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** "wrong email or password" → "Wrong email or password." (the hub's messages are lower-case phrases). */
export function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return trimmed;
  return endSentence(trimmed.charAt(0).toUpperCase() + trimmed.slice(1));
}

/** "Try again in 1 minute." / "Try again in 42 seconds." */
export function retryIn(seconds: number | null): string {
  if (seconds === null) return "Try again later.";
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 90) return `Try again in ${s} second${s === 1 ? "" : "s"}.`;
  const m = Math.ceil(s / 60);
  return `Try again in ${m} minute${m === 1 ? "" : "s"}.`;
}

/** What to tell a person about an error; HubError messages come from the hub and are meant for people. */
export function describeError(error: unknown): string {
  if (error instanceof HubError) {
    if (error.applied) return "The change was made, but the server's answer was too large to send back.";
    if (error.local && error.code === "unavailable") return "The server cannot be reached. Check your connection and try again.";
    if (error.local && error.code === "timeout") return "The server took too long to answer. Try again.";
    if (error.code === "rate_limited") return `Too many attempts. ${retryIn(error.retryAfter)}`;
    if (error.status >= 500) {
      const id = typeof error.details.request_id === "string" ? ` Request id: ${error.details.request_id}.` : "";
      return `${sentence(error.message)} Try again in a moment.${id}`;
    }
    return sentence(error.message);
  }
  return "Something went wrong.";
}
