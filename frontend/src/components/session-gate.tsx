"use client";

import { useRouter } from "next/navigation";
import { Fragment, useEffect, type ReactNode } from "react";
import { loginUrl } from "@/lib/sign-out-reasons";
import { useSessionStore } from "./providers/session-store-provider";
import { useSessionBootstrap } from "./session-bootstrap";
import { LoadingState } from "./states";

/**
 * Renders its children only for a signed-in user. On a fresh page load the
 * access token is gone (memory only), so it first trades the refresh cookie
 * for one (`useSessionBootstrap`); no session → off to /login/?next=<here>. When a session ends while
 * the page is open (expired, signed out elsewhere, deactivated) it goes to
 * the login page with the reason. The hub still checks every request: this
 * only decides what to render.
 *
 * The page is keyed by the user: when another user's session replaces this
 * one without a stop in between (a refresh brought their tokens: another tab
 * signed in as them), everything below starts over for them — the query
 * cache (`QueryProvider`) and the realtime holders with it.
 */
export function SessionGate({ children }: { children: ReactNode }) {
  const { status, failure } = useSessionBootstrap();
  const reason = useSessionStore((s) => s.reason);
  const userId = useSessionStore((s) => s.user?.id ?? null);
  const router = useRouter();

  useEffect(() => {
    if (status !== "anonymous") return;
    router.replace(loginUrl(reason, `${window.location.pathname}${window.location.search}`));
  }, [status, reason, router]);

  if (failure) return failure;
  if (status !== "authenticated") {
    return <LoadingState label={status === "anonymous" ? "Signing you out…" : "Checking your session…"} className="min-h-dvh" />;
  }
  return <Fragment key={userId}>{children}</Fragment>;
}
