import type { Metadata } from "next";
import { PageHeader } from "@/components/page-header";
import { InvitationView } from "./invitation-view";

export const metadata: Metadata = { title: "Invitation" };

/** `/invitations#token=…`: accept or decline an invitation to a workspace. */
export default function InvitationPage() {
  return (
    <>
      <PageHeader title="Invitation" description="You were invited to join a workspace." />
      <InvitationView />
    </>
  );
}
