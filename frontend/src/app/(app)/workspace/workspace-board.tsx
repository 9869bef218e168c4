"use client";

import { Plus, Trash2 } from "lucide-react";
import Link from "next/link";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { BoardToolbar, DEFAULT_QUERY, type BoardQuery } from "@/components/board/board-toolbar";
import { PresenceAvatars } from "@/components/board/presence-avatars";
import { BoardColumns } from "@/components/board/board-columns";
import { ResourceCard } from "@/components/board/resource-card";
import { TrashDialog } from "@/components/board/trash-dialog";
import { useToast } from "@/components/toaster";
import { ResourceDialog } from "@/components/board/resource-form-dialog";
import { useEditor, useLiveResources, useResourceApis } from "@/components/board/use-live-resources";
import { RoleUnknown, toastRoleChanged, useOnChangeRevoked, useWorkspaceRole } from "@/components/board/workspace-role";
import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { EmptyState, ErrorState, LoadingState } from "@/components/states";
import { Button } from "@/components/ui/button";
import { useSearchParam } from "@/components/use-search-param";
import { WorkspaceNav } from "@/components/workspace-nav";
import type { Resource, ResourceCreateInput, ResourcePatch } from "@/lib/api/resources";
import { createdUnseen, madeAnyway, restoreResource } from "@/lib/board/actions";
import { draftOf } from "@/lib/board/drafts";
import { planMove, positionAtEnd, type DropTarget } from "@/lib/board/order";
import { isPending, positionAtColumnEnd, selectColumns, selectFacets, statusLabel, viewOf, type BoardFilter } from "@/lib/board/store";
import { describeError } from "@/lib/error-messages";
import { HubError } from "@/lib/errors";
import { IntentKeys } from "@/lib/intent-keys";
import { getServices } from "@/lib/services";
import { useMembersQuery, type ResourceFilters } from "@/lib/queries";

export function WorkspaceBoard() {
  const id = useSearchParam("id");
  if (!id) return <MissingParam what="workspace" />;
  return <Board key={id} workspaceId={id} />;
}

function toListQuery(query: BoardQuery): ResourceFilters {
  return {
    q: query.q.trim() || undefined,
    status: query.status || undefined,
    kind: query.kind || undefined,
    tag: query.tag ? [query.tag] : undefined,
    sort: query.sort,
    order: query.order,
  };
}

function Board({ workspaceId }: { workspaceId: string }) {
  const apis = useResourceApis();
  const me = useSessionStore((s) => s.user?.id);
  const [query, setQuery] = useState<BoardQuery>(DEFAULT_QUERY);
  const listQuery = useMemo(() => toListQuery(query), [query]);
  /** This user lost the workspace while the board was open: removed from it, or it was deleted. */
  const [lost, setLost] = useState<"removed" | "deleted" | null>(null);
  const live = useLiveResources(workspaceId, listQuery, {
    me,
    onEvent: (event) => {
      const data = event.data as { id?: string; user_id?: string } | null;
      if (event.type === "workspace.deleted" && data?.id === workspaceId) setLost("deleted");
      else if (event.type === "member.removed" && data?.user_id === me) setLost("removed");
    },
  });
  const { state, dispatch, truncated } = live;
  const edit = useEditor(workspaceId, dispatch);

  // The title, your role and the avatars' names: queries the channel's events keep current (`workspace.updated`, `member.*`).
  const role = useWorkspaceRole(workspaceId, { enabled: live.ready });
  const workspaceName = role.workspace?.name ?? null;
  // Viewers read the board; members and up change it (docs/domain.md, Permissions). Until the role is known
  // nothing offers a change (no New card, Add a card, dragging, Edit, Delete or Restore), so a viewer never sees one fail.
  const { canChange } = role;
  const members = useMembersQuery(workspaceId, { enabled: live.ready }).data?.items;
  const names = useMemo(() => Object.fromEntries((members ?? []).map((m) => [m.user_id, m.display_name || m.email])), [members]);

  const filter: BoardFilter = useMemo(
    () => ({ q: query.q.trim() || null, status: query.status || null, kind: query.kind || null, tag: query.tag || null, sort: query.sort, order: query.order }),
    [query],
  );
  const columns = useMemo(() => selectColumns(state, filter), [state, filter]);
  /** The board shows its own order: cards can be put in order by hand. */
  const reorder = query.sort === "position" && query.order === "asc";
  const facets = useMemo(() => selectFacets(state), [state]);
  const statuses = facets.statuses;

  const [creating, setCreating] = useState<{ status: string } | null>(null);
  const [quickAddKeys] = useState(() => new IntentKeys<ResourceCreateInput>());
  const [editingId, setEditingId] = useState<string | null>(null);
  const [trashOpen, setTrashOpen] = useState(false);
  const editing = editingId ? state.items[editingId] : undefined;

  const onQuery = useCallback((next: BoardQuery) => setQuery(next), []);
  const toast = useToast();
  // Undo acts on the board as it is then, not as it was when the toast appeared.
  const latest = useRef(state);
  useEffect(() => {
    latest.current = state;
  }, [state]);
  // A drop or an Undo acts on the role as it is then: demoted meanwhile, it changes nothing.
  const allowed = useRef(canChange);
  useEffect(() => {
    allowed.current = canChange;
  }, [canChange]);
  // Demoted with a dialog open: it closes for good (a promotion later does not bring it back), and says so.
  useOnChangeRevoked(canChange, () => {
    if (creating === null && editingId === null) return;
    setCreating(null);
    setEditingId(null);
    toastRoleChanged(toast, creating !== null ? "the new card was not created" : "the edit was not saved");
  });

  /**
   * A drop: one update of the card's status (when it changed) and its order key,
   * between its new neighbours as shown (in the board's order), or after the
   * column's last card (sorted otherwise). Shown at once; a change of column
   * says so in a toast with Undo (back to the old column and place).
   */
  async function move(id: string, target: DropTarget) {
    if (!allowed.current) {
      toastRoleChanged(toast, "the card was not moved");
      return;
    }
    const board = latest.current;
    const server = board.items[id];
    const shown = viewOf(board, id);
    if (!server || !shown) return;
    let position: string;
    if (reorder) {
      const plan = planMove(columns, id, target);
      if (!plan) return;
      position = plan.position;
    } else {
      if (target.status === shown.status) return;
      const mates = Object.keys(board.items)
        .map((other) => viewOf(board, other)!)
        .filter((r) => r.id !== id && !r.deleted_at && r.status === target.status);
      position = positionAtEnd(mates);
    }
    const from = { status: shown.status, position: shown.position };
    const patch: ResourcePatch = target.status === from.status ? { position } : { status: target.status, position };
    const moved = edit(id, patch, server.version);
    if (target.status !== from.status) {
      toast({
        pageOnly: true,
        title: `Moved “${shown.title}” to ${statusLabel(target.status)}`,
        action: {
          label: "Undo",
          onClick: () => {
            if (!allowed.current) {
              toastRoleChanged(toast, "the move was not undone");
              return;
            }
            const now = latest.current.items[id];
            if (now) void edit(id, from, now.version);
          },
        },
      });
    }
    await moved;
  }

  /** Quick add: a task with this title at the end of the column (a draft first while offline, like the dialog). */
  async function quickAdd(status: string, title: string) {
    const offline = getServices().realtime.state !== "live";
    const end = () => positionAtColumnEnd(latest.current, status);
    // Offline it shows at once as a draft, after the column's last card as shown, and its create says that
    // place: a card dropped next to the draft meanwhile gets a key beside the draft's, and keeps its side of it
    // on the hub too (a create without a position goes after whatever is last when the hub gets it — the
    // dropped card, if its move got there first).
    const fresh = (): ResourceCreateInput => (offline ? { kind: "task", title, status, position: end() } : { kind: "task", title, status });
    // The same card added again after it failed (a lost reply, a timeout): the same key and exactly the request
    // that failed (its place, or none, as it was then, whether online now or not), so one card — a new place
    // would be a different request, which the hub refuses under the same key.
    const intent = JSON.stringify({ kind: "task", title, status });
    const { key, sent: body } = quickAddKeys.take(intent, fresh);
    const call = apis.rpc.create(workspaceId, body, { idempotencyKey: key });
    // A draft of a request sent without a place is drawn at the column's end, where the hub puts it.
    if (offline) dispatch({ type: "draftAdded", draft: draftOf(key, workspaceId, { ...body, position: body.position ?? end() }) });
    try {
      const created = await call;
      dispatch(offline ? { type: "draftSettled", draftId: key, resource: created } : { type: "upsert", resource: created });
    } catch (error) {
      if (offline) dispatch({ type: "draftSettled", draftId: key });
      if (madeAnyway(error)) {
        toast({ pageOnly: true, ...createdUnseen(title) });
        return;
      }
      quickAddKeys.failedWith(intent, key, body);
      toast({ pageOnly: true, title: `“${title}” was not created`, description: describeError(error), variant: "destructive" });
    }
  }

  async function remove(id: string) {
    const shown = viewOf(latest.current, id);
    if (!shown) return;
    const outcome = await edit.remove(shown);
    if (outcome.kind !== "deleted") return;
    toast({
      pageOnly: true,
      title: `Moved “${shown.title}” to the Trash`,
      action: { label: "Undo", onClick: () => void restore(outcome.resource) },
    });
  }

  async function restore(deleted: Resource) {
    const now = latest.current.items[deleted.id] ?? deleted;
    try {
      dispatch({ type: "upsert", resource: await restoreResource(apis.rpc, workspaceId, now) });
    } catch (error) {
      toast({ pageOnly: true, title: `“${deleted.title}” was not restored`, description: describeError(error), variant: "destructive" });
    }
  }


  // The hub drops the subscription (4003) when membership ends; a subscribe refused as forbidden means not a member
  // (or no such workspace). Any other refusal (too many subscriptions on this socket, a malformed reply) is shown as
  // itself: the board could not be followed live, and a reload (a new socket) may mend it.
  const removed = lost ?? (live.channel.status === "unsubscribed" ? "removed" : null);
  const channelError = live.channel.error;
  const refusedAccess = channelError && (channelError.code === "forbidden" || channelError.code === "not_found") ? channelError : null;
  const notMember = refusedAccess ?? (live.loadError instanceof HubError && live.loadError.status === 404 ? live.loadError : null);
  const notLive = channelError && !refusedAccess ? channelError : null;
  const blocked = Boolean(removed || notMember || notLive);
  const filtering = Boolean(filter.q || filter.status || filter.kind || filter.tag);
  const total = columns.reduce((n, c) => n + c.items.length, 0);
  const quoted = workspaceName ? `“${workspaceName}”` : "this workspace";

  return (
    <>
      <PageHeader
        title={notMember ? "Workspace not found" : (workspaceName ?? "Board")}
        description={workspaceName ? "Board" : null}
        actions={
          blocked ? null : (
            <>
              <PresenceAvatars members={live.presence.members} stale={live.presence.stale} names={names} me={me} />
              <Button variant="outline" onClick={() => setTrashOpen(true)}>
                <Trash2 aria-hidden="true" /> Trash
              </Button>
              {canChange ? (
                <Button onClick={() => setCreating({ status: filter.status ?? "open" })}>
                  <Plus aria-hidden="true" /> New card
                </Button>
              ) : null}
            </>
          )
        }
      />
      {notMember ? null : <WorkspaceNav workspaceId={workspaceId} />}
      {removed ? (
        <div data-testid="board-lost">
        <EmptyState
          title={removed === "deleted" ? `${quoted} was deleted` : `You are no longer a member of ${quoted}`}
          description={removed === "deleted" ? "Its cards are gone with it." : "Its cards are not shown to you any more. Ask one of its admins to add you again."}
          action={
            <Button asChild variant="outline">
              <Link href="/workspaces/">Your workspaces</Link>
            </Button>
          }
        />
        </div>
      ) : notMember ? (
        <EmptyState
          title="Workspace not found"
          description="It does not exist, or you are not a member of it."
          action={
            <Button asChild variant="outline">
              <Link href="/workspaces/">Your workspaces</Link>
            </Button>
          }
        />
      ) : notLive ? (
        <ErrorState title="This board cannot be followed live" error={notLive} onRetry={() => window.location.reload()} />
      ) : (
        <>
          {role.roleError ? <RoleUnknown error={role.roleError} onRetry={role.retry} /> : null}
          <BoardToolbar query={query} onChange={onQuery} facets={facets} />
          {live.loadStatus === "loading" ? (
            <LoadingState label="Loading the board…" />
          ) : live.loadStatus === "error" ? (
            <ErrorState title="Could not load the board" error={live.loadError} onRetry={live.reload} />
          ) : (
            <>
              {truncated ? (
                <p className="mb-3 text-sm text-muted-foreground">Showing the first 500 cards; narrow the search to see others.</p>
              ) : null}
              {total === 0 ? (
                <EmptyState
                  className="mb-6"
                  title={filtering ? "Nothing matches" : "No cards yet"}
                  description={
                    filtering ? "Try another search or filter." : canChange ? "Create the first one; everyone on this board sees it at once." : null
                  }
                  action={
                    filtering ? (
                      <Button variant="outline" onClick={() => setQuery(DEFAULT_QUERY)}>
                        Clear filters
                      </Button>
                    ) : null
                  }
                />
              ) : null}
              <div data-testid="board" data-channel={live.channel.status}>
                <BoardColumns
                  columns={columns}
                  canCreate={canChange}
                  canMove={canChange}
                  reorder={reorder}
                  titleOf={(id) => viewOf(state, id)?.title ?? "card"}
                  onCreateIn={(status) => setCreating({ status })}
                  onQuickAdd={(status, title) => void quickAdd(status, title)}
                  onMove={(id, target) => void move(id, target)}
                  renderCard={(resource) => {
                    const server = state.items[resource.id];
                    const conflict = state.conflicts[resource.id];
                    return (
                      <ResourceCard
                        key={resource.id}
                        resource={resource}
                        pending={isPending(state, resource.id)}
                        draft={!server}
                        reorder={reorder}
                        readOnly={!canChange}
                        conflict={conflict}
                        onEdit={() => setEditingId(resource.id)}
                        onDelete={() => void remove(resource.id)}
                        onRetry={() => conflict && server && void edit(resource.id, conflict.patch, server.version)}
                        onKeepTheirs={() => dispatch({ type: "conflictResolved", id: resource.id })}
                      />
                    );
                  }}
                />
              </div>
            </>
          )}
        </>
      )}
      <TrashDialog
        open={trashOpen && !blocked}
        onOpenChange={setTrashOpen}
        workspaceId={workspaceId}
        onRestored={(resource) => dispatch({ type: "upsert", resource })}
        canRestore={canChange}
      />
      <ResourceDialog
        mode="create"
        statuses={statuses}
        open={creating !== null && !blocked && canChange}
        onOpenChange={(open) => !open && setCreating(null)}
        workspaceId={workspaceId}
        dispatch={dispatch}
        initialStatus={creating?.status}
        draftPosition={(status) => positionAtColumnEnd(latest.current, status)}
      />
      {editing && !blocked && canChange ? (
        <ResourceDialog
          mode="edit"
          statuses={statuses}
          open={editingId !== null}
          onOpenChange={(open) => !open && setEditingId(null)}
          workspaceId={workspaceId}
          dispatch={dispatch}
          resource={editing}
          editor={edit}
        />
      ) : null}
    </>
  );
}
