"use client";

import Link from "next/link";
import type { ReactNode } from "react";
import { AppShell } from "@/components/app-shell";
import { RealtimeRoot } from "@/components/providers/realtime-root";
import { useSessionBootstrap } from "@/components/session-bootstrap";
import { LoadingState } from "@/components/states";
import { ThemeToggle } from "@/components/theme-toggle";

/**
 * Like SessionGate, it trades the refresh cookie for a session on page load
 * (`useSessionBootstrap`) — but a signed-out visitor stays here instead of
 * going to /login: the invitation page shows them what they were invited to
 * and how to sign in or create an account (with `?next=` back here). Signed in, the page gets the app's shell and socket.
 */
export function InvitationGate({ children }: { children: ReactNode }) {
  const { status, failure } = useSessionBootstrap();

  if (failure) return failure;
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
