"use client";

import { Check, Mail, X } from "lucide-react";
import Link from "next/link";
import { useEffect, useState } from "react";
import { ResendVerification } from "@/components/auth/resend-verification";
import { PageHeader } from "@/components/page-header";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { EmptyState, ErrorState, LoadingState } from "@/components/states";
import { Alert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { previewInvitation, type InvitationPreview } from "@/lib/api/invitations";
import { workspacesFor, type InvitationAccepted } from "@/lib/api/workspaces";
import { INVITATION_PAGE, withNext } from "@/lib/auth-next";
import { describeError } from "@/lib/error-messages";
import { HubError, orMade } from "@/lib/errors";
import { getServices } from "@/lib/services";
import { captureInvitationToken, forgetInvitationToken, sessionStore, storedInvitationToken } from "@/lib/workspaces/invitation-token";

/** Takes `#token=` out of the address into sessionStorage (before any redirect to /login). */
export function InvitationTokenCapture() {
  useEffect(() => {
    captureInvitationToken(window, sessionStore());
  }, []);
  return null;
}

type Answer = { kind: "accepted"; result: InvitationAccepted } | { kind: "declined" };
type Preview = { kind: "loading" } | { kind: "ready"; preview: InvitationPreview } | { kind: "failed"; error: unknown };

const ROLE_WORDS: Record<string, string> = { owner: "an owner", admin: "an admin", member: "a member", viewer: "a viewer" };

const NO_LONGER_VALID = "This invitation is no longer valid: it was already answered, replaced by a newer one or withdrawn, or it expired.";

/** The hub's 403 for an account whose email is not confirmed yet (it may answer once it is). */
function isUnverified(error: unknown): boolean {
  return error instanceof HubError && error.status === 403 && error.details.reason === "email_unverified";
}

function explain(error: unknown, email: string | undefined): string {
  if (error instanceof HubError) {
    if (isUnverified(error))
      return "Confirm your email address first: open the link we mailed you when you signed up (or send a new one), then answer this invitation again.";
    if (error.status === 404) return NO_LONGER_VALID;
    if (error.status === 403) return `This invitation is for another email address${email ? ` (you are signed in as ${email})` : ""}. Sign in with the invited account to answer it.`;
  }
  return describeError(error);
}

function validUntil(iso: string): string {
  return new Date(iso).toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" });
}

export function InvitationView() {
  const me = useSessionStore((s) => s.user);
  // undefined: not read yet (the exported HTML cannot know the address); null: no token
  const [token, setToken] = useState<string | null | undefined>(undefined);
  const [preview, setPreview] = useState<Preview>({ kind: "loading" });
  const [attempt, setAttempt] = useState(0);
  const [busy, setBusy] = useState<"accept" | "decline" | null>(null);
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [unverified, setUnverified] = useState(false);

  useEffect(() => {
    const store = sessionStore();
    // The layout's capture ran first; a token still in the address (no storage) is read directly.
    // eslint-disable-next-line react-hooks/set-state-in-effect
    setToken(storedInvitationToken(store) ?? captureInvitationToken(window, store));
    // Another invitation link opened on this page changes only the fragment: no new page load.
    const onHashChange = () => {
      const next = captureInvitationToken(window, sessionStore());
      if (!next) return;
      setAnswer(null);
      setError(null);
      setUnverified(false);
      setToken(next);
    };
    window.addEventListener("hashchange", onHashChange);
    return () => window.removeEventListener("hashchange", onHashChange);
  }, []);

  useEffect(() => {
    if (!token) return;
    const controller = new AbortController();
    // eslint-disable-next-line react-hooks/set-state-in-effect
    setPreview({ kind: "loading" });
    previewInvitation(getServices().api, token, { signal: controller.signal }).then(
      (found) => setPreview({ kind: "ready", preview: found }),
      (e: unknown) => {
        if (controller.signal.aborted) return;
        if (e instanceof HubError && e.status === 404) forgetInvitationToken(sessionStore());
        setPreview({ kind: "failed", error: e });
      },
    );
    return () => controller.abort();
  }, [token, attempt]);

  // Confirmed in another tab or page since this session read the account: read it again,
  // so the page does not ask for a confirmation that happened (the hub decides anyway).
  const unconfirmed = me !== null && !me.email_verified;
  useEffect(() => {
    if (!unconfirmed) return;
    const { auth, session } = getServices();
    auth.me().then(
      (fresh) => session.setUser(fresh),
      () => {},
    );
  }, [unconfirmed]);

  async function respond(kind: "accept" | "decline") {
    if (!token) return;
    setBusy(kind);
    setError(null);
    setUnverified(false);
    const api = workspacesFor(getServices().api);
    try {
      if (kind === "accept") setAnswer({ kind: "accepted", result: await api.acceptInvitation(token) });
      else {
        await orMade(api.declineInvitation(token), () => undefined);
        setAnswer({ kind: "declined" });
      }
      forgetInvitationToken(sessionStore());
    } catch (e) {
      if (e instanceof HubError && e.status === 404) forgetInvitationToken(sessionStore());
      setUnverified(isUnverified(e));
      setError(explain(e, me?.email));
    } finally {
      setBusy(null);
    }
  }

  const workspaceName = preview.kind === "ready" ? preview.preview.workspace_name : null;

  if (answer?.kind === "accepted") {
    const q = `?id=${encodeURIComponent(answer.result.workspace_id)}`;
    return (
      <EmptyState
        icon={<Check />}
        title={workspaceName ? `You joined “${workspaceName}”` : "You joined the workspace"}
        description={`Your role there: ${answer.result.role}.`}
        action={
          <Button asChild>
            <Link href={`/workspace/${q}`}>Open the workspace</Link>
          </Button>
        }
      />
    );
  }
  if (answer?.kind === "declined") {
    return (
      <EmptyState
        icon={<X />}
        title="Invitation declined"
        description="Whoever invited you can see that you declined."
        action={
          <Button asChild variant="outline">
            <Link href="/workspaces/">Your workspaces</Link>
          </Button>
        }
      />
    );
  }

  const elsewhere = me ? (
    <Button asChild variant="outline">
      <Link href="/workspaces/">Your workspaces</Link>
    </Button>
  ) : (
    <Button asChild variant="outline">
      <Link href="/login/">Sign in</Link>
    </Button>
  );

  if (token === undefined || (token && preview.kind === "loading")) return <LoadingState label="Reading the invitation…" />;
  if (!token) {
    return (
      <EmptyState
        title="No invitation in this link"
        description="Open the link from the invitation email again. It only works in the browser tab you open it in."
        action={elsewhere}
      />
    );
  }
  if (preview.kind === "failed") {
    if (preview.error instanceof HubError && preview.error.status === 404) {
      return <EmptyState icon={<X />} title="This invitation cannot be used" description={NO_LONGER_VALID} action={elsewhere} />;
    }
    return <ErrorState title="Could not read the invitation" error={preview.error} onRetry={() => setAttempt((n) => n + 1)} />;
  }
  if (preview.kind !== "ready") return null;

  const invitation = preview.preview;
  const forMe = me !== null && me.email.toLowerCase() === invitation.email.toLowerCase();
  return (
    <div className="mx-auto max-w-lg">
      <PageHeader title={`Join “${invitation.workspace_name}”`} description="An invitation to a workspace on Hubbub." />
      <Card className="grid gap-4 p-6" data-testid="invitation">
        <p className="text-base" data-testid="invitation-summary">
          <span className="font-medium">{invitation.invited_by_name ?? "Someone"}</span> invited you to join{" "}
          <span className="font-medium">“{invitation.workspace_name}”</span> as {ROLE_WORDS[invitation.role] ?? invitation.role}.
        </p>
        <p className="text-sm text-muted-foreground">
          The invitation is for <span className="font-medium text-foreground">{invitation.email}</span> and is valid until {validUntil(invitation.expires_at)}.
        </p>

        {me === null ? (
          <>
            <p className="text-sm">To answer it, create an account with that address or sign in with it. You come back here afterwards.</p>
            <div className="flex flex-wrap gap-2">
              <Button asChild>
                <Link href={withNext("/register/", INVITATION_PAGE)}>Create an account</Link>
              </Button>
              <Button asChild variant="outline">
                <Link href={withNext("/login/", INVITATION_PAGE)}>Sign in</Link>
              </Button>
            </div>
          </>
        ) : !forMe ? (
          <Alert variant="destructive" data-testid="invitation-error">
            You are signed in as {me.email}. This invitation is for {invitation.email}: sign out, then sign in with that address to answer it.
          </Alert>
        ) : (
          <>
            {!me.email_verified && !error ? (
              <Alert data-testid="invitation-verify">
                <Mail aria-hidden="true" className="mr-2 inline size-4" />
                Confirm your email address first: open the link we sent to {invitation.email}, then come back and press Accept.
              </Alert>
            ) : null}
            {error ? (
              <Alert variant="destructive" data-testid="invitation-error">
                {error}
              </Alert>
            ) : null}
            {unverified || !me.email_verified ? <ResendVerification /> : null}
            <div className="flex flex-wrap gap-2">
              <Button onClick={() => void respond("accept")} disabled={busy !== null}>
                <Check aria-hidden="true" /> {busy === "accept" ? "Accepting…" : "Accept"}
              </Button>
              <Button variant="outline" onClick={() => void respond("decline")} disabled={busy !== null}>
                <X aria-hidden="true" /> {busy === "decline" ? "Declining…" : "Decline"}
              </Button>
            </div>
          </>
        )}
      </Card>
    </div>
  );
}
