"use client";

import { useRouter } from "next/navigation";
import { useEffect, type ReactNode } from "react";
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
 */
export function SessionGate({ children }: { children: ReactNode }) {
  const { status, failure } = useSessionBootstrap();
  const reason = useSessionStore((s) => s.reason);
  const router = useRouter();

  useEffect(() => {
    if (status !== "anonymous") return;
    router.replace(loginUrl(reason, `${window.location.pathname}${window.location.search}`));
  }, [status, reason, router]);

  if (failure) return failure;
  if (status !== "authenticated") {
    return <LoadingState label={status === "anonymous" ? "Signing you out…" : "Checking your session…"} className="min-h-dvh" />;
  }
  return children;
}
