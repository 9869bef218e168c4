"use client";

import { Check, Mail, X } from "lucide-react";
import Link from "next/link";
import { useEffect, useState } from "react";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { Button } from "@/components/ui/button";
import {
  acceptMyInvitation,
  declineMyInvitation,
  myInvitations,
  previewInvitation,
  type InvitationPreview,
  type MyInvitation,
} from "@/lib/api/invitations";
import { INVITATION_PAGE } from "@/lib/auth-next";
import { describeError } from "@/lib/error-messages";
import { HubError, orMade } from "@/lib/errors";
import { getServices } from "@/lib/services";
import { forgetInvitationToken, sessionStore, storedInvitationToken } from "@/lib/workspaces/invitation-token";

const ROLE_WORDS: Record<string, string> = { owner: "an owner", admin: "an admin", member: "a member", viewer: "a viewer" };

type Outcome = { kind: "joined"; workspaceId: string } | { kind: "declined" } | { kind: "failed"; message: string };

/** The same invitation seen through its token (preview) and in my list. */
function sameInvitation(preview: InvitationPreview, item: MyInvitation): boolean {
  return preview.workspace_name === item.workspace_name && preview.expires_at === item.expires_at;
}

/**
 * Invitations waiting for the signed-in user, above the workspace list:
 *
 * - with a confirmed address, every pending invitation to it (`invitations.mine`), each
 *   with Accept / Decline — also when the invitation was opened in another tab, or
 *   never (the confirmation link opens a new tab, whose sessionStorage is empty);
 * - an invitation this tab holds (opened signed out, then signing up on the way) and
 *   the list does not show (an unconfirmed address sees no list): named, with a link
 *   back to the invitation page, which explains what is missing.
 */
export function PendingInvitationBanner() {
  const verified = useSessionStore((s) => s.user?.email_verified === true);
  const [items, setItems] = useState<MyInvitation[]>([]);
  const [held, setHeld] = useState<InvitationPreview | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [outcomes, setOutcomes] = useState<Record<string, Outcome>>({});

  useEffect(() => {
    if (!verified) return;
    const controller = new AbortController();
    myInvitations(getServices().api, { signal: controller.signal }).then(setItems, () => {
      // A hint, not the page: the workspace list works without it.
    });
    return () => controller.abort();
  }, [verified]);

  useEffect(() => {
    const token = storedInvitationToken(sessionStore());
    if (!token) return;
    const controller = new AbortController();
    previewInvitation(getServices().api, token, { signal: controller.signal }).then(setHeld, (e: unknown) => {
      if (e instanceof HubError && e.status === 404) forgetInvitationToken(sessionStore());
    });
    return () => controller.abort();
  }, []);

  async function answer(item: MyInvitation, kind: "accept" | "decline") {
    setBusy(item.id);
    const { api } = getServices();
    try {
      if (kind === "accept") {
        // Made but unanswered (too_large, applied): joined all the same, in the role it was for.
        const joined = await orMade(acceptMyInvitation(api, item.id), () => ({ workspace_id: item.workspace_id, role: item.role }));
        // The list below hears member.added on the user's channel and shows the workspace.
        setOutcomes((prev) => ({ ...prev, [item.id]: { kind: "joined", workspaceId: joined.workspace_id } }));
      } else {
        await orMade(declineMyInvitation(api, item.id), () => undefined);
        setOutcomes((prev) => ({ ...prev, [item.id]: { kind: "declined" } }));
      }
      if (held && sameInvitation(held, item)) {
        forgetInvitationToken(sessionStore());
        setHeld(null);
      }
    } catch (e) {
      const message = e instanceof HubError && e.status === 404 ? "This invitation is no longer valid." : describeError(e);
      setOutcomes((prev) => ({ ...prev, [item.id]: { kind: "failed", message } }));
    } finally {
      setBusy(null);
    }
  }

  const showHeld = held !== null && !items.some((item) => sameInvitation(held, item));
  if (items.length === 0 && !showHeld) return null;
  return (
    <section aria-label="Invitations for you" className="grid gap-2" data-testid="pending-invitations">
      {items.map((item) => {
        const outcome = outcomes[item.id];
        return (
          <div
            key={item.id}
            data-testid="my-invitation"
            className="flex flex-wrap items-center justify-between gap-3 rounded-lg border border-primary/40 bg-card px-4 py-3 text-sm"
          >
            <p className="flex items-center gap-2">
              <Mail aria-hidden="true" className="size-4 shrink-0" />
              <span>
                {outcome?.kind === "joined" ? (
                  <>
                    You joined <span className="font-medium">“{item.workspace_name}”</span>.
                  </>
                ) : outcome?.kind === "declined" ? (
                  <>
                    You declined the invitation to <span className="font-medium">“{item.workspace_name}”</span>.
                  </>
                ) : (
                  <>
                    {item.invited_by_name ?? "Someone"} invited you to join <span className="font-medium">“{item.workspace_name}”</span> as{" "}
                    {ROLE_WORDS[item.role] ?? item.role}.
                  </>
                )}
              </span>
            </p>
            {outcome?.kind === "joined" ? (
              <Button asChild size="sm">
                <Link href={`/workspace/?id=${encodeURIComponent(outcome.workspaceId)}`}>Open the board</Link>
              </Button>
            ) : outcome?.kind === "declined" ? null : (
              <div className="flex items-center gap-2">
                {outcome?.kind === "failed" ? (
                  <span role="alert" className="text-destructive">
                    {outcome.message}
                  </span>
                ) : null}
                <Button size="sm" onClick={() => void answer(item, "accept")} disabled={busy !== null} aria-label={`Accept the invitation to ${item.workspace_name}`}>
                  <Check aria-hidden="true" /> Accept
                </Button>
                <Button
                  size="sm"
                  variant="outline"
                  onClick={() => void answer(item, "decline")}
                  disabled={busy !== null}
                  aria-label={`Decline the invitation to ${item.workspace_name}`}
                >
                  <X aria-hidden="true" /> Decline
                </Button>
              </div>
            )}
          </div>
        );
      })}
      {showHeld ? (
        <div
          data-testid="pending-invitation"
          className="flex flex-wrap items-center justify-between gap-3 rounded-lg border border-primary/40 bg-card px-4 py-3 text-sm"
        >
          <p className="flex items-center gap-2">
            <Mail aria-hidden="true" className="size-4 shrink-0" />
            <span>
              {held.invited_by_name ?? "Someone"} invited you to <span className="font-medium">“{held.workspace_name}”</span>. It waits for your
              answer.
            </span>
          </p>
          <Button asChild size="sm">
            <Link href={INVITATION_PAGE}>Open the invitation</Link>
          </Button>
        </div>
      ) : null}
    </section>
  );
}
