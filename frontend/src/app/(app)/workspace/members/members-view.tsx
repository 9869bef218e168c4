"use client";

import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { EmptyState } from "@/components/states";
import { useSearchParam } from "@/components/use-search-param";
import { WorkspaceNav } from "@/components/workspace-nav";

/** Placeholder: GET/POST /workspaces/{ws}/members, roles owner/admin/member/viewer, invitations. */
export function MembersView() {
  const id = useSearchParam("id");
  if (!id) return <MissingParam what="workspace" />;
  return (
    <>
      <PageHeader title="Members" description="Who can see and change this workspace." />
      <WorkspaceNav workspaceId={id} />
      <EmptyState title="No members loaded" description="Members and invitations will be listed here." />
    </>
  );
}
