"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { Activity, LayoutGrid, Pencil, Plus, Trash2, Users } from "lucide-react";
import Link from "next/link";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { FormError } from "@/components/auth/auth-card";
import { FormField } from "@/components/form-field";
import { EmptyState, ErrorState, LoadMore, LoadingState } from "@/components/states";
import { useToast } from "@/components/toaster";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { workspacesFor, type MyWorkspace } from "@/lib/api/workspaces";
import { dropWorkspace, setWorkspace, usePager, useWorkspacesQuery, workspaceKeys } from "@/lib/queries";
import { describeError } from "@/lib/error-messages";
import { HubError, orMade } from "@/lib/errors";
import { IntentKeys } from "@/lib/intent-keys";
import { applyServerErrors } from "@/lib/forms";
import { getServices } from "@/lib/services";
import { workspaceNameSchema, type WorkspaceNameInput } from "@/lib/validations/workspaces";
import { PendingInvitationBanner } from "./pending-invitation";

const PAGE_SIZE = 20;

const api = () => workspacesFor(getServices().api);

/**
 * `GET /workspaces` (cursor paging), create, and rename/delete for owners.
 * The list is the cached `useWorkspacesQuery`; RealtimeRoot keeps it current
 * from the user's channel (added to a workspace elsewhere → it appears,
 * removed or deleted → it goes), and this page's own changes go into the
 * cache with the hub's answer.
 */
export function WorkspacesView() {
  const toast = useToast();
  const queryClient = useQueryClient();
  const [creating, setCreating] = useState(false);
  const workspaces = useWorkspacesQuery(PAGE_SIZE);
  const pages = usePager(workspaces, "workspaces");
  const { items } = workspaces;
  const { status } = pages;
  const onChanged = (next: MyWorkspace) => setWorkspace(queryClient, next);

  return (
    <div className="grid gap-4">
      <PendingInvitationBanner />
      <div className="flex justify-end">
        {!creating ? (
          <Button onClick={() => setCreating(true)}>
            <Plus aria-hidden="true" /> New workspace
          </Button>
        ) : null}
      </div>
      {creating ? (
        <CreateWorkspaceForm
          onCancel={() => setCreating(false)}
          onCreated={(ws, name) => {
            if (ws) setWorkspace(queryClient, ws);
            else void queryClient.invalidateQueries({ queryKey: workspaceKeys.list() });
            setCreating(false);
            toast({ title: "Workspace created", description: ws?.name ?? name });
          }}
        />
      ) : null}

      {status === "loading" && items.length === 0 ? <LoadingState label="Loading workspaces…" /> : null}
      {status === "error" ? <ErrorState title="Could not load your workspaces" error={workspaces.error} onRetry={() => void workspaces.refetch()} /> : null}
      {status !== "loading" && status !== "error" && items.length === 0 ? (
        <EmptyState title="No workspaces yet" description="Create a workspace, or ask to be invited to one." />
      ) : null}

      {items.length > 0 ? (
        <ul className="grid gap-3" aria-label="Workspaces">
          {items.map((ws) => (
            <WorkspaceRow
              key={ws.id}
              workspace={ws}
              onChanged={onChanged}
              onDeleted={() => dropWorkspace(queryClient, ws.id)}
            />
          ))}
        </ul>
      ) : null}

      <LoadMore pages={pages} />
    </div>
  );
}

/** `onCreated(null, name)`: made, but the hub could not send it back (too_large, details.applied). */
function CreateWorkspaceForm({ onCreated, onCancel }: { onCreated: (ws: MyWorkspace | null, name: string) => void; onCancel: () => void }) {
  const form = useForm<WorkspaceNameInput>({ resolver: zodResolver(workspaceNameSchema), defaultValues: { name: "" } });
  const { errors, isSubmitting } = form.formState;
  // Create again after a failure (a lost reply, a 504): the same key, so one workspace.
  const [keys] = useState(() => new IntentKeys<WorkspaceNameInput>());
  const onSubmit = form.handleSubmit(async (values) => {
    const intent = JSON.stringify(values);
    const { key, sent } = keys.take(intent, () => values);
    try {
      // Made but unanswered (too_large, applied): created, though its id is not known here; the list is read again.
      const created = await orMade<MyWorkspace | null>(api().create(sent, { idempotencyKey: key }), () => null);
      onCreated(created, sent.name);
    } catch (e) {
      keys.failedWith(intent, key, sent);
      applyServerErrors(e, form.setError, ["name"]);
    }
  });
  return (
    <Card className="p-4">
      <form noValidate onSubmit={onSubmit} aria-label="New workspace" className="grid gap-3 sm:grid-cols-[1fr_auto] sm:items-start">
        <FormField label="Workspace name" autoComplete="off" autoFocus error={errors.name} {...form.register("name")} />
        <div className="flex gap-2 sm:pt-7">
          <Button type="submit" disabled={isSubmitting}>
            {isSubmitting ? "Creating…" : "Create"}
          </Button>
          <Button type="button" variant="ghost" onClick={onCancel}>
            Cancel
          </Button>
        </div>
        <div className="sm:col-span-2">
          <FormError message={errors.root?.server?.message} />
        </div>
      </form>
    </Card>
  );
}

function WorkspaceRow({
  workspace,
  onChanged,
  onDeleted,
}: {
  workspace: MyWorkspace;
  onChanged: (ws: MyWorkspace) => void;
  onDeleted: () => void;
}) {
  const toast = useToast();
  const [renaming, setRenaming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const q = `?id=${encodeURIComponent(workspace.id)}`;
  const owner = workspace.role === "owner";

  /** 412: someone changed it first. Show the current one; the user decides again. */
  async function refreshAfterConflict(e: unknown): Promise<boolean> {
    if (!(e instanceof HubError) || e.code !== "precondition_failed") return false;
    try {
      onChanged(await api().get(workspace.id));
    } catch {
      // the list stays as it is; the toast below says what happened
    }
    toast({ title: "The workspace changed meanwhile", description: "This shows its current state now. Try again if you still want to.", variant: "destructive" });
    return true;
  }

  async function remove() {
    setDeleting(true);
    try {
      await orMade(api().remove(workspace.id, workspace.version), () => undefined);
      onDeleted();
      toast({ title: "Workspace deleted", description: workspace.name });
    } catch (e) {
      if (!(await refreshAfterConflict(e))) toast({ title: "Could not delete the workspace", description: describeError(e), variant: "destructive" });
    } finally {
      setDeleting(false);
    }
  }

  return (
    <li data-testid="workspace-row" data-workspace-id={workspace.id}>
      <Card className="flex flex-col gap-3 p-4 sm:flex-row sm:items-center sm:justify-between">
        {renaming ? (
          <RenameForm
            workspace={workspace}
            onDone={(next) => {
              if (next) onChanged(next);
              setRenaming(false);
            }}
            onConflict={refreshAfterConflict}
          />
        ) : (
          <div className="grid min-w-0 gap-1">
            <div className="flex items-center gap-2">
              <Link href={`/workspace/${q}`} className="truncate font-medium hover:underline">
                {workspace.name}
              </Link>
              <Badge variant="secondary">{workspace.role}</Badge>
            </div>
            <nav aria-label={`${workspace.name} pages`} className="flex flex-wrap gap-3 text-sm text-muted-foreground">
              <Link href={`/workspace/${q}`} className="inline-flex items-center gap-1 hover:text-foreground">
                <LayoutGrid className="size-3.5" aria-hidden="true" /> Board
              </Link>
              <Link href={`/workspace/members/${q}`} className="inline-flex items-center gap-1 hover:text-foreground">
                <Users className="size-3.5" aria-hidden="true" /> Members
              </Link>
              <Link href={`/workspace/activity/${q}`} className="inline-flex items-center gap-1 hover:text-foreground">
                <Activity className="size-3.5" aria-hidden="true" /> Activity
              </Link>
            </nav>
          </div>
        )}
        {owner && !renaming ? (
          <div className="flex gap-2">
            <Button variant="outline" size="sm" onClick={() => setRenaming(true)} aria-label={`Rename ${workspace.name}`}>
              <Pencil aria-hidden="true" /> Rename
            </Button>
            <ConfirmDialog
              trigger={
                <Button variant="outline" size="sm" disabled={deleting} aria-label={`Delete ${workspace.name}`}>
                  <Trash2 aria-hidden="true" /> Delete
                </Button>
              }
              title={`Delete ${workspace.name}?`}
              description="Its resources, members and activity are deleted for everyone. This cannot be undone."
              confirmLabel="Delete"
              onConfirm={() => void remove()}
            />
          </div>
        ) : null}
      </Card>
    </li>
  );
}

function RenameForm({
  workspace,
  onDone,
  onConflict,
}: {
  workspace: MyWorkspace;
  onDone: (ws: MyWorkspace | null) => void;
  onConflict: (e: unknown) => Promise<boolean>;
}) {
  const form = useForm<WorkspaceNameInput>({ resolver: zodResolver(workspaceNameSchema), defaultValues: { name: workspace.name } });
  const { errors, isSubmitting } = form.formState;
  const onSubmit = form.handleSubmit(async (values) => {
    if (values.name === workspace.name) {
      onDone(null);
      return;
    }
    try {
      // Made but unanswered (too_large, applied): renamed, at the next version.
      onDone(await orMade(api().rename(workspace.id, workspace.version, values), () => ({ ...workspace, ...values, version: workspace.version + 1 })));
    } catch (e) {
      if (await onConflict(e)) onDone(null);
      else applyServerErrors(e, form.setError, ["name"]);
    }
  });
  return (
    <form
      noValidate
      onSubmit={onSubmit}
      aria-label={`Rename ${workspace.name}`}
      className="grid w-full gap-2 sm:grid-cols-[1fr_auto] sm:items-start"
      onKeyDown={(e) => {
        if (e.key === "Escape") onDone(null);
      }}
    >
      <FormField label="New name" autoComplete="off" autoFocus error={errors.name} {...form.register("name")} />
      <div className="flex gap-2 sm:pt-7">
        <Button type="submit" size="sm" disabled={isSubmitting}>
          Save
        </Button>
        <Button type="button" size="sm" variant="ghost" onClick={() => onDone(null)}>
          Cancel
        </Button>
      </div>
      <div className="sm:col-span-2">
        <FormError message={errors.root?.server?.message} />
      </div>
    </form>
  );
}
