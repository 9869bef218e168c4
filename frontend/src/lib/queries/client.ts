import { QueryClient } from "@tanstack/react-query";
import { HubError } from "../errors";

/** Retries of a failed read: only what may pass on its own (network, 5xx, timeouts, rate limits), twice. */
export function shouldRetry(failureCount: number, error: unknown): boolean {
  if (failureCount >= 2) return false;
  return error instanceof HubError ? error.retryable : false;
}

/**
 * The tab's query cache (one per signed-in session: `QueryProvider` makes
 * it, and a sign-out unmounts it with the rest of the app).
 *
 * - Live pages are kept current by channel events (`./live`), so data stays
 *   fresh until an event or `onReload` says otherwise: no refetch on window
 *   focus, on reconnect or on remount within `staleTime`. Reads happen once on
 *   load, as the pages did before.
 * - A 4xx is an answer, not a hiccup: not retried.
 */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 60_000,
        gcTime: 5 * 60_000,
        refetchOnWindowFocus: false,
        refetchOnReconnect: false,
        retry: shouldRetry,
        retryDelay: (attempt) => Math.min(1_000 * 2 ** attempt, 8_000),
      },
      mutations: { retry: false },
    },
  });
}
