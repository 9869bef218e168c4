"use client";

import { ArchiveRestore } from "lucide-react";
import { useState } from "react";
import { ErrorState, LoadingState } from "@/components/states";
import { useToast } from "@/components/toaster";
import { Button } from "@/components/ui/button";
import type { Resource } from "@/lib/api/resources";
import { restoreResource } from "@/lib/board/actions";
import { describeError } from "@/lib/error-messages";
import { useTrashQuery } from "@/lib/queries";
import { Dialog, DialogContent, DialogDescription, DialogTitle } from "./dialog";
import { useResourceApis } from "./use-live-resources";

/**
 * The workspace's deleted cards, newest first, each with Restore (it goes back to its column, for everyone);
 * without Restore when `canRestore` is false (a viewer).
 */
export function TrashDialog({
  open,
  onOpenChange,
  workspaceId,
  onRestored,
  canRestore = true,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  workspaceId: string;
  onRestored: (resource: Resource) => void;
  canRestore?: boolean;
}) {
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent>
        <DialogTitle>Trash</DialogTitle>
        <DialogDescription>Deleted cards stay here until you restore them.</DialogDescription>
        {open ? <TrashList workspaceId={workspaceId} onRestored={onRestored} canRestore={canRestore} /> : null}
      </DialogContent>
    </Dialog>
  );
}

function TrashList({ workspaceId, onRestored, canRestore }: { workspaceId: string; onRestored: (resource: Resource) => void; canRestore: boolean }) {
  const apis = useResourceApis();
  const toast = useToast();
  // The cached Trash, kept current by the channel's events (a delete puts a card in, a restore takes it out).
  const trash = useTrashQuery(workspaceId);
  const items = trash.data?.items ?? null;
  const error = trash.data ? null : trash.error;
  const [busy, setBusy] = useState<string | null>(null);

  async function restore(resource: Resource) {
    setBusy(resource.id);
    try {
      // The reply goes into the board and the cache: out of the Trash, back in its column.
      onRestored(await restoreResource(apis.rpc, workspaceId, resource));
    } catch (e) {
      toast({ pageOnly: true, title: `“${resource.title}” was not restored`, description: describeError(e), variant: "destructive" });
      void trash.refetch();
    } finally {
      setBusy(null);
    }
  }

  if (error) return <ErrorState title="Could not load the Trash" error={error} onRetry={() => void trash.refetch()} />;
  if (items === null) return <LoadingState label="Loading the Trash…" />;
  if (items.length === 0) return <p className="py-6 text-center text-sm text-muted-foreground">The Trash is empty.</p>;
  return (
    <ul className="grid gap-2" data-testid="trash-list">
      {items.map((resource) => (
        <li key={resource.id} data-testid="trash-item" className="flex items-center justify-between gap-3 rounded-md border border-border p-2">
          <div className="min-w-0">
            <p className="truncate text-sm font-medium">{resource.title}</p>
            <p className="text-xs text-muted-foreground">Deleted {resource.deleted_at ? new Date(resource.deleted_at).toLocaleString() : ""}</p>
          </div>
          {canRestore ? (
            <Button size="sm" variant="outline" disabled={busy === resource.id} onClick={() => void restore(resource)} aria-label={`Restore ${resource.title}`}>
              <ArchiveRestore aria-hidden="true" /> Restore
            </Button>
          ) : null}
        </li>
      ))}
    </ul>
  );
}
