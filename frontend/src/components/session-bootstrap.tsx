"use client";

import { useEffect, useState, type ReactElement } from "react";
import { getServices } from "@/lib/services";
import type { SessionStatus } from "@/stores/session-store";
import { useSessionStore } from "./providers/session-store-provider";
import { ErrorState } from "./states";

/**
 * The page-load check both gates make (`SessionGate` for the app,
 * `InvitationGate` for the invitation page). The access token lives in memory
 * only, so a fresh page has none: while the status is `unknown`, trade the
 * refresh cookie for one (`getToken`, which shares one refresh with every
 * other caller), then read the user if the reply did not carry it. No session
 * → the store says `anonymous` with the session's reason; what that means
 * (off to /login, or stay and show the invitation) is the gate's own.
 *
 * `failure` is what to render when the check itself failed (the hub
 * unreachable, a 5xx): an error with *Try again*, which runs it once more.
 */
export function useSessionBootstrap(): { status: SessionStatus; failure: ReactElement | null } {
  const status = useSessionStore((s) => s.status);
  const signedOut = useSessionStore((s) => s.signedOut);
  const [error, setError] = useState<unknown>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    if (status !== "unknown") return;
    let cancelled = false;
    const { session, auth } = getServices();
    (async () => {
      const token = await session.getToken({ forceRefresh: false });
      if (cancelled) return;
      if (token === null) {
        signedOut(session.state.reason);
        return;
      }
      if (!session.state.user) session.setUser(await auth.me());
    })().catch((e: unknown) => {
      if (!cancelled) setError(e);
    });
    return () => {
      cancelled = true;
    };
  }, [status, attempt, signedOut]);

  const failure =
    error !== null && status === "unknown" ? (
      <div className="mx-auto max-w-md px-4 py-24">
        <ErrorState
          title="Could not check your session"
          error={error}
          onRetry={() => {
            setError(null);
            setAttempt((n) => n + 1);
          }}
        />
      </div>
    ) : null;
  return { status, failure };
}
