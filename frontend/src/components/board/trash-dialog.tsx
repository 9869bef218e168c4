"use client";

import { ArchiveRestore } from "lucide-react";
import { useEffect, useState } from "react";
import { ErrorState, LoadingState } from "@/components/states";
import { useToast } from "@/components/toaster";
import { Button } from "@/components/ui/button";
import type { Resource } from "@/lib/api/resources";
import { describeError } from "@/lib/error-messages";
import { Dialog, DialogContent, DialogDescription, DialogTitle } from "./dialog";
import { useResourceApis } from "./use-live-resources";

/** The workspace's deleted cards, newest first, each with Restore (it goes back to its column, for everyone). */
export function TrashDialog({
  open,
  onOpenChange,
  workspaceId,
  onRestored,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  workspaceId: string;
  onRestored: (resource: Resource) => void;
}) {
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent>
        <DialogTitle>Trash</DialogTitle>
        <DialogDescription>Deleted cards stay here until you restore them.</DialogDescription>
        {open ? <TrashList workspaceId={workspaceId} onRestored={onRestored} /> : null}
      </DialogContent>
    </Dialog>
  );
}

function TrashList({ workspaceId, onRestored }: { workspaceId: string; onRestored: (resource: Resource) => void }) {
  const apis = useResourceApis();
  const toast = useToast();
  const [items, setItems] = useState<Resource[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [attempt, setAttempt] = useState(0);
  const [busy, setBusy] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    apis.resources
      .list(workspaceId, { deleted: true, sort: "updated_at", order: "desc", limit: 100 }, { signal: controller.signal })
      .then(
        (page) => {
          setItems(page.items);
          setError(null);
        },
        (e: unknown) => {
          if (!controller.signal.aborted) setError(e);
        },
      );
    return () => controller.abort();
  }, [apis, workspaceId, attempt]);

  async function restore(resource: Resource) {
    setBusy(resource.id);
    try {
      const restored = await apis.rpc.restore(workspaceId, resource.id, resource.version);
      onRestored(restored);
      setItems((list) => (list ?? []).filter((r) => r.id !== resource.id));
    } catch (e) {
      toast({ pageOnly: true, title: `“${resource.title}” was not restored`, description: describeError(e), variant: "destructive" });
      setAttempt((n) => n + 1);
    } finally {
      setBusy(null);
    }
  }

  if (error) return <ErrorState title="Could not load the Trash" error={error} onRetry={() => setAttempt((n) => n + 1)} />;
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
          <Button size="sm" variant="outline" disabled={busy === resource.id} onClick={() => void restore(resource)} aria-label={`Restore ${resource.title}`}>
            <ArchiveRestore aria-hidden="true" /> Restore
          </Button>
        </li>
      ))}
    </ul>
  );
}
