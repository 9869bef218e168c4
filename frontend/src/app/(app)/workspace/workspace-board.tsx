"use client";

import { useState } from "react";
import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { EmptyState } from "@/components/states";
import { Badge } from "@/components/ui/badge";
import { useSearchParam } from "@/components/use-search-param";
import { WorkspaceNav } from "@/components/workspace-nav";
import { useChannel, usePresence } from "@/lib/realtime/react";
import type { Publication } from "@/lib/realtime/types";

export function WorkspaceBoard() {
  const id = useSearchParam("id");
  if (!id) return <MissingParam what="workspace" />;
  return <Board workspaceId={id} />;
}

function Board({ workspaceId }: { workspaceId: string }) {
  const channel = `workspace:${workspaceId}`;
  const [recent, setRecent] = useState<Publication[]>([]);
  const view = useChannel(channel, {
    onPublication: (p) => setRecent((xs) => [p, ...xs].slice(0, 20)),
    // Placeholder: reload the board over REST once the API is wired.
    onReload: () => setRecent([]),
  });
  const members = usePresence(channel);

  return (
    <>
      <PageHeader
        title="Board"
        description={<span className="font-mono text-xs">{workspaceId}</span>}
        actions={
          <>
            <Badge variant="outline" data-testid="channel-status">
              {view.status}
            </Badge>
            <Badge variant="secondary">{members.length} online</Badge>
          </>
        }
      />
      <WorkspaceNav workspaceId={workspaceId} />
      {view.error ? (
        <EmptyState title="You cannot see this workspace" description={view.error.message} />
      ) : (
        <div className="grid gap-6 lg:grid-cols-[1fr_18rem]">
          <EmptyState title="No resources yet" description="Resources of this workspace will appear here, live." />
          <section aria-labelledby="live-events" className="rounded-xl border border-border p-4">
            <h2 id="live-events" className="mb-3 text-sm font-semibold">
              Live events
            </h2>
            {recent.length === 0 ? (
              <p className="text-sm text-muted-foreground">Nothing yet.</p>
            ) : (
              <ul className="grid gap-2 text-xs">
                {recent.map((p) => (
                  <li key={p.offset} className="truncate font-mono">
                    #{p.offset} {JSON.stringify(p.data)}
                  </li>
                ))}
              </ul>
            )}
          </section>
        </div>
      )}
    </>
  );
}
