"use client";

import { Plus } from "lucide-react";
import { useCallback, useEffect, useMemo, useState } from "react";
import { BoardToolbar, DEFAULT_QUERY, type BoardQuery } from "@/components/board/board-toolbar";
import { PresenceAvatars } from "@/components/board/presence-avatars";
import { ResourceCard } from "@/components/board/resource-card";
import { ResourceDialog } from "@/components/board/resource-form-dialog";
import { useEditor, useLiveResources, useResourceApis } from "@/components/board/use-live-resources";
import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { EmptyState, ErrorState, LoadingState } from "@/components/states";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { useSearchParam } from "@/components/use-search-param";
import { WorkspaceNav } from "@/components/workspace-nav";
import type { ResourceListQuery } from "@/lib/api/resources";
import { isPending, selectColumns, selectFacets, statusLabel, type BoardFilter } from "@/lib/board/store";
import { HubError } from "@/lib/errors";

export function WorkspaceBoard() {
  const id = useSearchParam("id");
  if (!id) return <MissingParam what="workspace" />;
  return <Board key={id} workspaceId={id} />;
}

function toListQuery(query: BoardQuery): ResourceListQuery {
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
  const [truncated, setTruncated] = useState(false);
  const live = useLiveResources(workspaceId, JSON.stringify(listQuery), async (signal) => {
    const { items, truncated } = await apis.resources.listAll(workspaceId, listQuery, { signal });
    setTruncated(truncated);
    return { type: "loaded", items, replace: true };
  });
  const { state, dispatch } = live;
  const edit = useEditor(workspaceId, dispatch);

  const [workspaceName, setWorkspaceName] = useState<string | null>(null);
  const [names, setNames] = useState<Record<string, string>>({});
  const presentIds = live.presence.map((m) => String(m.user)).sort().join(",");
  useEffect(() => {
    const controller = new AbortController();
    apis.workspace.get(workspaceId, { signal: controller.signal }).then((w) => setWorkspaceName(w.name), () => {});
    return () => controller.abort();
  }, [apis, workspaceId]);
  useEffect(() => {
    // Names for the avatars; asked again when someone new shows up (a member added meanwhile).
    const controller = new AbortController();
    apis.workspace.members(workspaceId, { signal: controller.signal }).then(
      (page) => setNames(Object.fromEntries(page.items.map((m) => [m.user_id, m.display_name || m.email]))),
      () => {},
    );
    return () => controller.abort();
  }, [apis, workspaceId, presentIds]);

  const filter: BoardFilter = useMemo(
    () => ({ q: query.q.trim() || null, status: query.status || null, kind: query.kind || null, tag: query.tag || null, sort: query.sort, order: query.order }),
    [query],
  );
  const columns = useMemo(() => selectColumns(state, filter), [state, filter]);
  const facets = useMemo(() => selectFacets(state), [state]);
  const statuses = facets.statuses;

  const [creating, setCreating] = useState<{ status: string } | null>(null);
  const [editingId, setEditingId] = useState<string | null>(null);
  const editing = editingId ? state.items[editingId] : undefined;

  const onQuery = useCallback((next: BoardQuery) => setQuery(next), []);

  const notMember = live.channel.error ?? (live.loadError instanceof HubError && live.loadError.status === 404 ? live.loadError : null);
  const filtering = Boolean(filter.q || filter.status || filter.kind || filter.tag);
  const total = columns.reduce((n, c) => n + c.items.length, 0);

  return (
    <>
      <PageHeader
        title={workspaceName ?? "Board"}
        description={workspaceName ? "Board" : <span className="font-mono text-xs">{workspaceId}</span>}
        actions={
          <>
            <PresenceAvatars members={live.presence} names={names} me={me} />
            <Badge variant="outline" data-testid="channel-status" className="hidden sm:inline-flex">
              {live.channel.status}
            </Badge>
            <Button onClick={() => setCreating({ status: filter.status ?? "open" })} disabled={Boolean(notMember)}>
              <Plus aria-hidden="true" /> New resource
            </Button>
          </>
        }
      />
      <WorkspaceNav workspaceId={workspaceId} />
      {notMember ? (
        <EmptyState title="You cannot see this workspace" description="It does not exist, or you are not a member of it." />
      ) : (
        <>
          <BoardToolbar query={query} onChange={onQuery} facets={facets} />
          {live.loadStatus === "loading" ? (
            <LoadingState label="Loading the board…" />
          ) : live.loadStatus === "error" ? (
            <ErrorState title="Could not load the board" error={live.loadError} onRetry={live.reload} />
          ) : (
            <>
              {truncated ? (
                <p className="mb-3 text-sm text-muted-foreground">Showing the first 500 resources; narrow the search to see others.</p>
              ) : null}
              {total === 0 ? (
                <EmptyState
                  className="mb-6"
                  title={filtering ? "Nothing matches" : "No resources yet"}
                  description={filtering ? "Try another search or filter." : "Create the first one; everyone on this board sees it at once."}
                  action={
                    filtering ? (
                      <Button variant="outline" onClick={() => setQuery(DEFAULT_QUERY)}>
                        Clear filters
                      </Button>
                    ) : null
                  }
                />
              ) : null}
              <div className="grid gap-4 md:grid-cols-2 xl:grid-cols-3" data-testid="board">
                {columns.map((column) => {
                  const headingId = `column-${column.status}`;
                  return (
                    <section
                      key={column.status}
                      aria-labelledby={headingId}
                      data-testid={`column-${column.status}`}
                      className="flex min-w-0 flex-col gap-3 rounded-xl border border-border bg-muted/40 p-3"
                    >
                      <div className="flex items-center justify-between gap-2">
                        <h2 id={headingId} className="text-sm font-semibold">
                          {statusLabel(column.status)}{" "}
                          <span className="font-normal text-muted-foreground tabular-nums">({column.items.length})</span>
                        </h2>
                        <Button
                          variant="ghost"
                          size="icon"
                          className="size-7"
                          aria-label={`New resource in ${statusLabel(column.status)}`}
                          onClick={() => setCreating({ status: column.status })}
                        >
                          <Plus aria-hidden="true" />
                        </Button>
                      </div>
                      {column.items.length === 0 ? <p className="px-1 py-4 text-center text-xs text-muted-foreground">Nothing here.</p> : null}
                      {column.items.map((resource) => {
                        const server = state.items[resource.id]!;
                        const conflict = state.conflicts[resource.id];
                        return (
                          <ResourceCard
                            key={resource.id}
                            resource={resource}
                            statuses={statuses}
                            pending={isPending(state, resource.id)}
                            conflict={conflict}
                            onMove={(status) => void edit(resource.id, { status }, server.version)}
                            onEdit={() => setEditingId(resource.id)}
                            onRetry={() => conflict && void edit(resource.id, conflict.patch, server.version)}
                            onKeepTheirs={() => dispatch({ type: "conflictResolved", id: resource.id })}
                          />
                        );
                      })}
                    </section>
                  );
                })}
              </div>
            </>
          )}
        </>
      )}
      <ResourceDialog
        mode="create"
        open={creating !== null}
        onOpenChange={(open) => !open && setCreating(null)}
        workspaceId={workspaceId}
        dispatch={dispatch}
        initialStatus={creating?.status}
      />
      {editing ? (
        <ResourceDialog
          mode="edit"
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
