import { HubError } from "./errors";

/** What to tell a person about an error; HubError messages come from the hub and are meant for people. */
export function describeError(error: unknown): string {
  if (error instanceof HubError) {
    if (error.local && error.code === "unavailable") return "The server cannot be reached. Check your connection and try again.";
    if (error.local && error.code === "timeout") return "The server took too long to answer. Try again.";
    return error.message;
  }
  return "Something went wrong.";
}
