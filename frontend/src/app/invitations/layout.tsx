import type { ReactNode } from "react";
import { AppShell } from "@/components/app-shell";
import { RealtimeRoot } from "@/components/providers/realtime-root";
import { SessionGate } from "@/components/session-gate";
import { InvitationTokenCapture } from "./invitation-view";

/**
 * `/invitations#token=…` (the link in the invitation mail) is a signed-in page
 * like those in `(app)`, but it lives outside that group: its token must be
 * taken out of the address before SessionGate sends a signed-out visitor to
 * /login (whose `next` keeps no fragment). The capture is SessionGate's older
 * sibling, so its effect runs first.
 */
export default function InvitationsLayout({ children }: { children: ReactNode }) {
  return (
    <>
      <InvitationTokenCapture />
      <SessionGate>
        <RealtimeRoot>
          <AppShell>{children}</AppShell>
        </RealtimeRoot>
      </SessionGate>
    </>
  );
}
