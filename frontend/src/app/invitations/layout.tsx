import type { ReactNode } from "react";
import { InvitationGate } from "./invitation-gate";
import { InvitationTokenCapture } from "./invitation-view";

/**
 * `/invitations#token=…` (the link in the invitation mail) lives outside `(app)`:
 * a signed-out visitor is not sent to /login but shown what the invitation is for,
 * with links to sign in or create an account that come back here (`?next=`). The token
 * leaves the address for this tab's sessionStorage first (`next` keeps no fragment);
 * the capture is the gate's older sibling, so its effect runs first.
 */
export default function InvitationsLayout({ children }: { children: ReactNode }) {
  return (
    <>
      <InvitationTokenCapture />
      <InvitationGate>{children}</InvitationGate>
    </>
  );
}
