"use client";

import Link from "next/link";
import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { EmptyState } from "@/components/states";
import { Button } from "@/components/ui/button";
import { useSearchParam } from "@/components/use-search-param";

/** Placeholder: GET /workspaces/{ws}/resources/{id}, edits with If-Match, live updates from workspace:<ws>. */
export function ResourceDetail() {
  const ws = useSearchParam("ws");
  const id = useSearchParam("id");
  if (!ws || !id) return <MissingParam what="resource" />;
  return (
    <>
      <PageHeader
        title="Resource"
        description={<span className="font-mono text-xs">{id}</span>}
        actions={
          <Button asChild variant="outline">
            <Link href={`/workspace/?id=${encodeURIComponent(ws)}`}>Back to board</Link>
          </Button>
        }
      />
      <EmptyState title="Resource details" description="Title, body, status, tags and history will be shown here." />
    </>
  );
}
