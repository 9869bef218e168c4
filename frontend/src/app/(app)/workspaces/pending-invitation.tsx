"use client";

import { Mail } from "lucide-react";
import Link from "next/link";
import { useEffect, useState } from "react";
import { Button } from "@/components/ui/button";
import { previewInvitation, type InvitationPreview } from "@/lib/api/invitations";
import { INVITATION_PAGE } from "@/lib/auth-next";
import { HubError } from "@/lib/errors";
import { getServices } from "@/lib/services";
import { forgetInvitationToken, sessionStore, storedInvitationToken } from "@/lib/workspaces/invitation-token";

/**
 * An invitation opened in this tab and not answered yet (its token waits in
 * sessionStorage, e.g. after signing up on the way): say so, name it, link back.
 * The hub has no "invitations to me" listing, so only this tab's invitation shows.
 */
export function PendingInvitationBanner() {
  const [pending, setPending] = useState<InvitationPreview | null>(null);

  useEffect(() => {
    const token = storedInvitationToken(sessionStore());
    if (!token) return;
    const controller = new AbortController();
    previewInvitation(getServices().api, token, { signal: controller.signal }).then(setPending, (e: unknown) => {
      if (e instanceof HubError && e.status === 404) forgetInvitationToken(sessionStore());
    });
    return () => controller.abort();
  }, []);

  if (!pending) return null;
  return (
    <section
      aria-label="Invitation waiting"
      data-testid="pending-invitation"
      className="flex flex-wrap items-center justify-between gap-3 rounded-lg border border-primary/40 bg-card px-4 py-3 text-sm"
    >
      <p className="flex items-center gap-2">
        <Mail aria-hidden="true" className="size-4 shrink-0" />
        <span>
          {pending.invited_by_name ?? "Someone"} invited you to <span className="font-medium">“{pending.workspace_name}”</span>. It waits for your
          answer.
        </span>
      </p>
      <Button asChild size="sm">
        <Link href={INVITATION_PAGE}>Open the invitation</Link>
      </Button>
    </section>
  );
}
