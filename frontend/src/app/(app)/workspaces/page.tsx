import type { Metadata } from "next";
import { Plus } from "lucide-react";
import { PageHeader } from "@/components/page-header";
import { EmptyState } from "@/components/states";
import { Button } from "@/components/ui/button";

export const metadata: Metadata = { title: "Workspaces" };

/** Placeholder: the list comes from GET /api/v1/workspaces once the API is wired. */
export default function WorkspacesPage() {
  return (
    <>
      <PageHeader
        title="Workspaces"
        description="Everything you are a member of."
        actions={
          <Button disabled title="Coming with the API wiring">
            <Plus aria-hidden="true" /> New workspace
          </Button>
        }
      />
      <EmptyState title="No workspaces yet" description="Create a workspace, or ask to be invited to one." />
    </>
  );
}
