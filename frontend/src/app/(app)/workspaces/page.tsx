import type { Metadata } from "next";
import { PageHeader } from "@/components/page-header";
import { WorkspacesView } from "./workspaces-view";

export const metadata: Metadata = { title: "Workspaces" };

/** `/workspaces/`: GET /api/v1/workspaces, create, rename/delete (owners). */
export default function WorkspacesPage() {
  return (
    <>
      <PageHeader title="Workspaces" description="Everything you are a member of." />
      <WorkspacesView />
    </>
  );
}
