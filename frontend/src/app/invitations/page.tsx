import type { Metadata } from "next";
import { InvitationView } from "./invitation-view";

export const metadata: Metadata = { title: "Invitation" };

/** `/invitations#token=…`: what the invitation is for, then accept or decline it (signed in). */
export default function InvitationPage() {
  return <InvitationView />;
}
