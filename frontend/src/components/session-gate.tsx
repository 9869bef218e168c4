"use client";

import { useRouter } from "next/navigation";
import { useEffect, useState, type ReactNode } from "react";
import { getServices } from "@/lib/services";
import { loginUrl } from "@/lib/sign-out-reasons";
import { useSessionStore } from "./providers/session-store-provider";
import { ErrorState, LoadingState } from "./states";

/**
 * Renders its children only for a signed-in user. On a fresh page load the
 * access token is gone (memory only), so it first trades the refresh cookie
 * for one; no session → off to /login/?next=<here>. When a session ends while
 * the page is open (expired, signed out elsewhere, deactivated) it goes to
 * the login page with the reason. The hub still checks every request: this
 * only decides what to render.
 */
export function SessionGate({ children }: { children: ReactNode }) {
  const status = useSessionStore((s) => s.status);
  const reason = useSessionStore((s) => s.reason);
  const signedOut = useSessionStore((s) => s.signedOut);
  const router = useRouter();
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

  useEffect(() => {
    if (status !== "anonymous") return;
    router.replace(loginUrl(reason, `${window.location.pathname}${window.location.search}`));
  }, [status, reason, router]);

  if (error !== null && status === "unknown") {
    return (
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
    );
  }
  if (status !== "authenticated") {
    return <LoadingState label={status === "anonymous" ? "Signing you out…" : "Checking your session…"} className="min-h-dvh" />;
  }
  return children;
}
