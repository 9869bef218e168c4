"use client";

import Link from "next/link";
import { useEffect, useRef, useState } from "react";
import { myInvitations, type MyInvitation } from "@/lib/api/invitations";
import { INVITATION_PAGE, withNext } from "@/lib/auth-next";
import { describeError } from "@/lib/error-messages";
import { HubError } from "@/lib/errors";
import { getServices } from "@/lib/services";
import { sessionStore, storedInvitationToken } from "@/lib/workspaces/invitation-token";
import { LoadingState } from "../states";
import { Button } from "../ui/button";
import { AuthCard } from "./auth-card";
import { ResendVerification } from "./resend-verification";
import { readResetToken } from "./reset-password-form";

type State = { kind: "reading" } | { kind: "missing" } | { kind: "verifying" } | { kind: "verified" } | { kind: "failed"; message: string };

/**
 * The mailed link is `/verify-email#token=…` (the fragment never reaches a server log).
 * The token is read once, dropped from the address bar, and sent at once: the link is
 * the confirmation, there is nothing to type. When this tab holds an invitation that
 * waited for the confirmation (opened signed out, then "Create an account"), the page
 * leads back to it — through sign-in when the session is gone.
 *
 * A link opened in a new tab holds no invitation token, yet the person should still
 * learn that one waits: once confirmed, that page asks for the invitations to the
 * address (`invitations.mine`, which takes a session from the refresh cookie like
 * any signed-in page) and says where to answer them (the workspaces page lists them
 * with Accept / Decline). Signed out in this browser, the ask fails (401) and the
 * page says nothing more. A tab that holds the invitation asks nothing: it leads
 * back to it.
 */
export function VerifyEmailView() {
  const [state, setState] = useState<State>({ kind: "reading" });
  const sent = useRef(false); // one request per page, even when effects run twice (dev)
  const [invitationWaits, setInvitationWaits] = useState(false);
  const [pending, setPending] = useState<MyInvitation[]>([]);

  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect
    setInvitationWaits(storedInvitationToken(sessionStore()) !== null);
  }, []);

  useEffect(() => {
    const token = readResetToken(window.location);
    if (token) window.history.replaceState(window.history.state, "", window.location.pathname);
    if (!token) {
      // Reading the address happens after hydration (the exported HTML cannot know it).
      // eslint-disable-next-line react-hooks/set-state-in-effect
      setState({ kind: "missing" });
      return;
    }
    if (sent.current) return;
    sent.current = true;
    setState({ kind: "verifying" });
    getServices()
      .auth.verifyEmail({ token })
      .then(
        () => setState({ kind: "verified" }),
        (error: unknown) =>
          setState({
            kind: "failed",
            message:
              error instanceof HubError && error.status === 400
                ? "This link is invalid, used or expired. Signed in, you can ask for a new one here."
                : describeError(error),
          }),
      );
  }, []);

  const verified = state.kind === "verified";
  useEffect(() => {
    if (!verified || invitationWaits) return;
    const controller = new AbortController();
    myInvitations(getServices().api, { signal: controller.signal }).then(setPending, () => {});
    return () => controller.abort();
  }, [verified, invitationWaits]);

  if (state.kind === "reading" || state.kind === "verifying") return <LoadingState label="Confirming your email…" />;

  if (state.kind === "verified") {
    return (
      <AuthCard title="Email confirmed" description="Your address is verified: you can accept invitations to workspaces now.">
        {pending.length > 0 ? (
          <p role="status" data-testid="pending-invitations" className="mb-3 text-sm">
            {pendingHint(pending)}
          </p>
        ) : null}
        {invitationWaits ? (
          <div className="grid gap-2">
            <Button asChild className="w-full">
              <Link href={INVITATION_PAGE}>Back to your invitation</Link>
            </Button>
            <Button asChild variant="outline" className="w-full">
              <Link href="/workspaces/">Your workspaces</Link>
            </Button>
          </div>
        ) : (
          <Button asChild className="w-full">
            <Link href="/workspaces/">Your workspaces</Link>
          </Button>
        )}
      </AuthCard>
    );
  }

  return (
    <AuthCard
      title={state.kind === "missing" ? "This link is incomplete" : "Could not confirm your email"}
      description={state.kind === "missing" ? "Open the link from the email again." : undefined}
    >
      <div className="grid gap-3">
        {state.kind === "failed" ? (
          <p role="alert" data-testid="verify-error" className="text-sm text-destructive">
            {state.message}
          </p>
        ) : null}
        <ResendVerification />
        <Button asChild className="w-full">
          <Link href={withNext("/login/", invitationWaits ? INVITATION_PAGE : null)}>Sign in</Link>
        </Button>
      </div>
    </AuthCard>
  );
}

/** What waits for the confirmed address, in one sentence that says where to answer it. */
export function pendingHint(pending: readonly MyInvitation[]): string {
  if (pending.length === 1) {
    const only = pending[0]!;
    return `${only.invited_by_name ?? "Someone"} invited you to join “${only.workspace_name}”: accept or decline it on your workspaces page.`;
  }
  const names = pending.slice(0, 3).map((i) => `“${i.workspace_name}”`);
  const more = pending.length > 3 ? ` and ${pending.length - 3} more` : "";
  return `You have ${pending.length} pending invitations (${names.join(", ")}${more}): answer them on your workspaces page.`;
}
