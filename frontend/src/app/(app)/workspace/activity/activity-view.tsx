"use client";

import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { EmptyState } from "@/components/states";
import { useSearchParam } from "@/components/use-search-param";
import { WorkspaceNav } from "@/components/workspace-nav";

/** Placeholder: GET /workspaces/{ws}/activity. */
export function ActivityView() {
  const id = useSearchParam("id");
  if (!id) return <MissingParam what="workspace" />;
  return (
    <>
      <PageHeader title="Activity" description="What happened in this workspace." />
      <WorkspaceNav workspaceId={id} />
      <EmptyState title="No activity yet" />
    </>
  );
}
