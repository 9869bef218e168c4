"use client";

import { ArchiveRestore, Pencil, Trash2 } from "lucide-react";
import Link from "next/link";
import { useState } from "react";
import { ResourceDialog } from "@/components/board/resource-form-dialog";
import { useEditor, useLiveResource, useResourceApis } from "@/components/board/use-live-resources";
import { RoleUnknown, toastRoleChanged, useOnChangeRevoked, useWorkspaceRole } from "@/components/board/workspace-role";
import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { EmptyState, ErrorState, LoadingState } from "@/components/states";
import { useToast } from "@/components/toaster";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent } from "@/components/ui/card";
import { useSearchParam } from "@/components/use-search-param";
import { isStaleVersion } from "@/lib/api/resources";
import { changedFields, restoreResource } from "@/lib/board/actions";
import { statusLabel, viewOf } from "@/lib/board/store";
import { describeError } from "@/lib/error-messages";
import { HubError } from "@/lib/errors";

/** `/workspace/resource/?ws=<workspace id>&id=<resource id>`: live from `workspace:<ws>`; edit, soft delete, restore. */
export function ResourceDetail() {
  const ws = useSearchParam("ws");
  const id = useSearchParam("id");
  if (!ws || !id) return <MissingParam what="card" />;
  return <Detail key={`${ws}/${id}`} workspaceId={ws} resourceId={id} />;
}

const when = (iso: string) => new Date(iso).toLocaleString();

function Detail({ workspaceId, resourceId }: { workspaceId: string; resourceId: string }) {
  const apis = useResourceApis();
  const toast = useToast();
  // With `me`, the caller's own `member.updated` (a new role) reaches the role read below live.
  const me = useSessionStore((s) => s.user?.id);
  const live = useLiveResource(workspaceId, resourceId, { me });
  const { state, dispatch } = live;
  const edit = useEditor(workspaceId, dispatch);
  // Viewers read the card; members and up change it (docs/domain.md, Permissions). No Edit, Delete or Restore until the role is known.
  const role = useWorkspaceRole(workspaceId, { enabled: live.ready });
  const { canChange } = role;
  const [editing, setEditing] = useState(false);
  // Demoted with the edit dialog open: it closes for good (a promotion later does not bring it back), and says so.
  useOnChangeRevoked(canChange, () => {
    if (!editing) return;
    setEditing(false);
    toastRoleChanged(toast, "the edit was not saved");
  });
  const [busy, setBusy] = useState(false);
  const resource = viewOf(state, resourceId);
  const server = state.items[resourceId];
  const conflict = state.conflicts[resourceId];
  const back = `/workspace/?id=${encodeURIComponent(workspaceId)}`;

  const header = (
    <PageHeader
      title={resource?.title ?? "Card"}
      description={resource ? `${resource.kind} · version ${resource.version}` : <span className="font-mono text-xs">{resourceId}</span>}
      actions={
        <Button asChild variant="outline">
          <Link href={back}>Back to board</Link>
        </Button>
      }
    />
  );

  if (live.loadStatus === "loading" && !resource) return <>{header}<LoadingState /></>;
  if (!resource || !server) {
    const gone = live.loadError instanceof HubError && live.loadError.status === 404;
    return (
      <>
        {header}
        {gone || state.versions[resourceId] ? (
          <EmptyState
            title="This card does not exist"
            description="It was deleted for good, or it is in a workspace you are not a member of."
            action={
              <Button asChild variant="outline">
                <Link href={back}>Back to board</Link>
              </Button>
            }
          />
        ) : (
          <ErrorState title="Could not load the card" error={live.loadError} onRetry={live.reload} />
        )}
      </>
    );
  }

  async function remove() {
    setBusy(true);
    try {
      await apis.rpc.delete(workspaceId, resourceId, server!.version);
      toast({ pageOnly: true, title: "Card deleted", description: "You can restore it from this page or from the Trash." });
      // The event brings the deleted copy; fetch it now so the page does not wait for it. It is deleted either way:
      // if this read fails, the copy we had, one version on, shows it deleted at once (as on the board), and a reload
      // (or the event) brings the server's.
      try {
        dispatch({ type: "upsert", resource: await apis.rpc.get(workspaceId, resourceId, { includeDeleted: true }) });
      } catch {
        dispatch({ type: "upsert", resource: { ...server!, version: server!.version + 1, deleted_at: new Date().toISOString() } });
        live.reload();
      }
    } catch (error) {
      toast({
        pageOnly: true,
        title: isStaleVersion(error) ? "It changed meanwhile" : "Not deleted",
        description: isStaleVersion(error) ? "Someone changed it just now. Look at the new version and try again." : describeError(error),
        variant: "destructive",
      });
      if (isStaleVersion(error)) live.reload();
    } finally {
      setBusy(false);
    }
  }

  async function restore() {
    setBusy(true);
    try {
      dispatch({ type: "upsert", resource: await restoreResource(apis.rpc, workspaceId, server!) });
      toast({ pageOnly: true, title: "Card restored" });
    } catch (error) {
      toast({ pageOnly: true, title: "Not restored", description: describeError(error), variant: "destructive" });
      if (isStaleVersion(error)) live.reload();
    } finally {
      setBusy(false);
    }
  }

  const wanted = conflict ? changedFields(resource, conflict.patch) : null;

  return (
    <>
      {header}
      <div className="grid gap-6 lg:grid-cols-[1fr_16rem]" data-testid="resource-detail" data-version={resource.version} data-status={resource.status}>
        <Card>
          <CardContent className="grid gap-4 pt-6">
            {role.roleError ? <RoleUnknown error={role.roleError} onRetry={role.retry} /> : null}
            {resource.deleted_at ? (
              <div role="status" className="rounded-md border border-destructive/40 px-3 py-2 text-sm">
                Deleted {when(resource.deleted_at)}. It is hidden from the board until restored.
              </div>
            ) : null}
            {conflict && wanted ? (
              <div role="alert" className="grid gap-2 rounded-md border border-amber-500/50 bg-amber-500/10 p-3 text-sm">
                <p>Someone else changed this first; above is their version.</p>
                <div className="flex gap-2">
                  {Object.keys(wanted).length > 0 ? (
                    <Button size="sm" onClick={() => void edit(resourceId, conflict.patch, server.version)}>
                      Retry mine
                    </Button>
                  ) : null}
                  <Button size="sm" variant="outline" onClick={() => dispatch({ type: "conflictResolved", id: resourceId })}>
                    Keep theirs
                  </Button>
                </div>
              </div>
            ) : null}
            {resource.body ? (
              <p className="text-sm whitespace-pre-wrap">{resource.body}</p>
            ) : (
              <p className="text-sm text-muted-foreground">No description.</p>
            )}
            {canChange ? (
              <div className="flex flex-wrap gap-2">
                <Button variant="outline" onClick={() => setEditing(true)} disabled={Boolean(resource.deleted_at)}>
                  <Pencil aria-hidden="true" /> Edit
                </Button>
                {resource.deleted_at ? (
                  <Button onClick={() => void restore()} disabled={busy}>
                    <ArchiveRestore aria-hidden="true" /> Restore
                  </Button>
                ) : (
                  <ConfirmDialog
                    trigger={
                      <Button variant="outline" disabled={busy}>
                        <Trash2 aria-hidden="true" /> Delete
                      </Button>
                    }
                    title={`Delete “${resource.title}”?`}
                    description="It leaves the board for everyone. You can restore it from this page."
                    confirmLabel="Delete"
                    onConfirm={() => void remove()}
                  />
                )}
              </div>
            ) : null}
          </CardContent>
        </Card>
        <Card>
          <CardContent className="pt-6">
            <dl className="grid gap-3 text-sm">
              <div>
                <dt className="text-muted-foreground">Status</dt>
                <dd data-testid="detail-status">{statusLabel(resource.status)}</dd>
              </div>
              <div>
                <dt className="text-muted-foreground">Kind</dt>
                <dd>{resource.kind}</dd>
              </div>
              <div>
                <dt className="text-muted-foreground">Tags</dt>
                <dd className="flex flex-wrap gap-1">
                  {resource.tags.length ? resource.tags.map((t) => <Badge key={t} variant="outline">#{t}</Badge>) : "—"}
                </dd>
              </div>
              <div>
                <dt className="text-muted-foreground">Created</dt>
                <dd>{when(resource.created_at)}</dd>
              </div>
              <div>
                <dt className="text-muted-foreground">Updated</dt>
                <dd>{when(resource.updated_at)}</dd>
              </div>
              <div>
                <dt className="text-muted-foreground">Version</dt>
                <dd className="tabular-nums">{resource.version}</dd>
              </div>
            </dl>
          </CardContent>
        </Card>
      </div>
      <ResourceDialog
        mode="edit"
        open={editing && canChange}
        onOpenChange={setEditing}
        workspaceId={workspaceId}
        dispatch={dispatch}
        resource={server}
        editor={edit}
      />
    </>
  );
}
