"use client";

import Link from "next/link";
import { useEffect, useState, type ReactNode } from "react";
import { AppShell } from "@/components/app-shell";
import { RealtimeRoot } from "@/components/providers/realtime-root";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { ErrorState, LoadingState } from "@/components/states";
import { ThemeToggle } from "@/components/theme-toggle";
import { getServices } from "@/lib/services";

/**
 * Like SessionGate, it trades the refresh cookie for a session on page load — but a
 * signed-out visitor stays here instead of going to /login: the invitation page
 * shows them what they were invited to and how to sign in or create an account
 * (with `?next=` back here). Signed in, the page gets the app's shell and socket.
 */
export function InvitationGate({ children }: { children: ReactNode }) {
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
  if (status === "authenticated") {
    return (
      <RealtimeRoot>
        <AppShell>{children}</AppShell>
      </RealtimeRoot>
    );
  }
  if (status === "anonymous") {
    return (
      <div className="flex min-h-dvh flex-col">
        <header className="mx-auto flex h-14 w-full max-w-6xl items-center justify-between px-4">
          <Link href="/login/" className="font-semibold tracking-tight">
            Hubbub
          </Link>
          <ThemeToggle />
        </header>
        <main id="main" className="mx-auto w-full max-w-2xl flex-1 px-4 py-8">
          {children}
        </main>
      </div>
    );
  }
  return <LoadingState label="Checking your session…" className="min-h-dvh" />;
}
