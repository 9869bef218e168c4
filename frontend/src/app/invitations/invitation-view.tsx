"use client";

import { Check, X } from "lucide-react";
import Link from "next/link";
import { useEffect, useState } from "react";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { ResendVerification } from "@/components/auth/resend-verification";
import { EmptyState, LoadingState } from "@/components/states";
import { Alert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { workspacesFor, type InvitationAccepted } from "@/lib/api/workspaces";
import { describeError } from "@/lib/error-messages";
import { HubError } from "@/lib/errors";
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

/** The hub's 403 for an account whose email is not confirmed yet (it may answer once it is). */
function isUnverified(error: unknown): boolean {
  return error instanceof HubError && error.status === 403 && error.details.reason === "email_unverified";
}

function explain(error: unknown, email: string | undefined): string {
  if (error instanceof HubError) {
    if (isUnverified(error))
      return "Confirm your email address first: open the link we mailed you when you signed up (or send a new one), then answer this invitation again.";
    if (error.status === 404) return "This invitation is no longer valid: it was already answered, replaced by a newer one or withdrawn, or it expired.";
    if (error.status === 403) return `This invitation is for another email address${email ? ` (you are signed in as ${email})` : ""}. Sign in with the invited account to answer it.`;
  }
  return describeError(error);
}

export function InvitationView() {
  const me = useSessionStore((s) => s.user);
  // undefined: not read yet (the exported HTML cannot know the address); null: no token
  const [token, setToken] = useState<string | null | undefined>(undefined);
  const [busy, setBusy] = useState<"accept" | "decline" | null>(null);
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [unverified, setUnverified] = useState(false);

  useEffect(() => {
    const store = sessionStore();
    // The layout's capture ran first; a token still in the address (no storage) is read directly.
    // eslint-disable-next-line react-hooks/set-state-in-effect
    setToken(storedInvitationToken(store) ?? captureInvitationToken(window, store));
  }, []);

  async function respond(kind: "accept" | "decline") {
    if (!token) return;
    setBusy(kind);
    setError(null);
    setUnverified(false);
    const api = workspacesFor(getServices().api);
    try {
      if (kind === "accept") setAnswer({ kind: "accepted", result: await api.acceptInvitation(token) });
      else {
        await api.declineInvitation(token);
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

  if (token === undefined) return <LoadingState />;
  if (answer?.kind === "accepted") {
    const q = `?id=${encodeURIComponent(answer.result.workspace_id)}`;
    return (
      <EmptyState
        icon={<Check />}
        title="You joined the workspace"
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
  if (!token) {
    return (
      <EmptyState
        title="No invitation in this link"
        description="Open the link from the invitation email again. It only works in the browser you open it in."
        action={
          <Button asChild variant="outline">
            <Link href="/workspaces/">Your workspaces</Link>
          </Button>
        }
      />
    );
  }
  return (
    <Card className="mx-auto grid max-w-lg gap-4 p-6">
      <p className="text-sm">
        Answer the invitation as <span className="font-medium">{me?.email ?? "the signed-in account"}</span>. Only the invited email address can accept
        it.
      </p>
      {error ? (
        <Alert variant="destructive" data-testid="invitation-error">
          {error}
        </Alert>
      ) : null}
      {unverified ? <ResendVerification /> : null}
      <div className="flex flex-wrap gap-2">
        <Button onClick={() => void respond("accept")} disabled={busy !== null}>
          <Check aria-hidden="true" /> {busy === "accept" ? "Accepting…" : "Accept"}
        </Button>
        <Button variant="outline" onClick={() => void respond("decline")} disabled={busy !== null}>
          <X aria-hidden="true" /> {busy === "decline" ? "Declining…" : "Decline"}
        </Button>
      </div>
    </Card>
  );
}
