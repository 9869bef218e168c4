"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { EmptyState, ErrorState, LoadMore, LoadingState } from "@/components/states";
import { useSearchParam } from "@/components/use-search-param";
import { Card } from "@/components/ui/card";
import { WorkspaceNav } from "@/components/workspace-nav";
import type { HubEvent } from "@/lib/api/types";
import { workspacesFor, type ActivityPublic, type MyWorkspace } from "@/lib/api/workspaces";
import { useChannel } from "@/lib/realtime/react";
import { getServices } from "@/lib/services";
import { describeActivity, isActivityEvent, mergeActivity } from "@/lib/workspaces/live";
import { useCursorPages } from "@/lib/workspaces/use-cursor-pages";
import { useWorkspace } from "@/lib/workspaces/use-workspace";

const PAGE_SIZE = 30;
const entryKey = (entry: ActivityPublic) => entry.id;
/** Events come in bursts (a bulk edit): one look at the first page per burst. */
const REFETCH_DELAY_MS = 150;
/** Members read for names: up to this many pages of 100. */
const MEMBER_PAGES = 20;

const api = () => workspacesFor(getServices().api);

/** `/workspace/activity/?id=`: newest first, Load more, live: an event makes it read the first page again and merge it in. */
export function ActivityView() {
  const id = useSearchParam("id");
  if (!id) return <MissingParam what="workspace" />;
  return <ActivityFeed key={id} workspaceId={id} />;
}

function ActivityFeed({ workspaceId }: { workspaceId: string }) {
  const workspace = useWorkspace(workspaceId);
  const fetchActivity = useCallback(
    (cursor: string | null, signal: AbortSignal) => api().activity(workspaceId, { limit: PAGE_SIZE, cursor }, { signal }),
    [workspaceId],
  );
  const pages = useCursorPages(fetchActivity, entryKey, "activity");
  const { items: entries, setItems: setEntries, status, error } = pages;
  const [names, setNames] = useState<Record<string, string>>({});
  /** Every member's name is known: an actor without one has left the workspace. */
  const [allMembers, setAllMembers] = useState(false);
  const [fresh, setFresh] = useState<ReadonlySet<number>>(new Set());
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const headRequest = useRef<AbortController | null>(null);
  const shown = useRef<ActivityPublic[]>([]);
  useEffect(() => {
    shown.current = entries;
  }, [entries]);

  // Who is who: actors are user ids; members give them names, every page of them (up to MEMBER_PAGES). Only once
  // all are read is an actor without a name a former member; until then (or if a page fails) just "A member".
  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    void (async () => {
      let cursor: string | null = null;
      for (let read = 0; read < MEMBER_PAGES; read += 1) {
        const page = await api().members(workspaceId, { limit: 100, cursor }, { signal });
        if (signal.aborted) return;
        setNames((prev) => ({ ...prev, ...Object.fromEntries(page.items.map((m) => [m.user_id, m.display_name])) }));
        cursor = page.next_cursor ?? null;
        if (!cursor) return setAllMembers(true);
      }
    })().catch(() => {});
    return () => controller.abort();
  }, [workspaceId]);

  /** Read the newest page and merge it in (de-duplicated by id); what is new gets highlighted. */
  const refreshHead = useCallback(() => {
    headRequest.current?.abort();
    const controller = new AbortController();
    headRequest.current = controller;
    api()
      .activity(workspaceId, { limit: PAGE_SIZE }, { signal: controller.signal })
      .then((page) => {
        if (controller.signal.aborted) return;
        const known = new Set(shown.current.map((e) => e.id));
        const added = page.items.filter((e) => !known.has(e.id)).map((e) => e.id);
        if (added.length) setFresh(new Set(added));
        setEntries((prev) => mergeActivity(prev, page.items));
      })
      .catch(() => {});
  }, [workspaceId, setEntries]);

  useEffect(
    () => () => {
      if (refetchTimer.current !== null) clearTimeout(refetchTimer.current);
      headRequest.current?.abort();
    },
    [],
  );

  useChannel<HubEvent<unknown>>(`workspace:${workspaceId}`, {
    onPublication({ data: event }) {
      if (event.type === "member.added" || event.type === "member.updated") {
        const m = event.data as { user_id?: string; display_name?: string };
        if (m.user_id && m.display_name) setNames((prev) => ({ ...prev, [m.user_id!]: m.display_name! }));
      }
      if (event.type === "workspace.updated") {
        const data = event.data as Partial<MyWorkspace>;
        workspace.set({ name: data.name, version: data.version });
      }
      if (!isActivityEvent(event.type)) return;
      if (refetchTimer.current !== null) clearTimeout(refetchTimer.current);
      refetchTimer.current = setTimeout(() => {
        refetchTimer.current = null;
        refreshHead();
      }, REFETCH_DELAY_MS);
    },
    onReload() {
      // Missed events: what was shown may be stale anywhere; start over.
      pages.reload();
    },
  });

  if (workspace.status === "error") {
    return (
      <>
        <PageHeader title="Activity" />
        <ErrorState title="Could not open this workspace" error={workspace.error} onRetry={workspace.reload} />
      </>
    );
  }

  return (
    <>
      <PageHeader
        title={workspace.workspace?.name ? `Activity · ${workspace.workspace.name}` : "Activity"}
        description="What happened in this workspace, newest first. New changes appear as they happen."
      />
      <WorkspaceNav workspaceId={workspaceId} />
      <div className="grid gap-4">
        {status === "loading" && entries.length === 0 ? <LoadingState label="Loading activity…" /> : null}
        {status === "error" ? <ErrorState title="Could not load the activity" error={error} onRetry={pages.reload} /> : null}
        {status === "ready" && entries.length === 0 ? (
          <EmptyState title="No activity yet" description="Changes to cards and members will show up here as they happen." />
        ) : null}
        {entries.length > 0 ? (
          <Card className="p-0">
            <ol aria-label="Activity" aria-live="polite" aria-relevant="additions" className="divide-y divide-border">
              {entries.map((entry) => (
                <li
                  key={entry.id}
                  data-testid="activity-entry"
                  data-action={entry.action}
                  data-id={entry.id}
                  className={`flex flex-col gap-1 px-4 py-3 text-sm sm:flex-row sm:items-baseline sm:justify-between ${fresh.has(entry.id) ? "bg-accent/50" : ""}`}
                >
                  <span>
                    <span className="font-medium">{entry.actor_id ? (names[entry.actor_id] ?? (allMembers ? "A former member" : "A member")) : "The system"}</span>{" "}
                    {describeActivity(entry)}
                  </span>
                  <time dateTime={entry.at} className="shrink-0 text-xs text-muted-foreground" title={new Date(entry.at).toLocaleString()}>
                    {relativeTime(entry.at)}
                  </time>
                </li>
              ))}
            </ol>
          </Card>
        ) : null}
        <LoadMore pages={pages} />
      </div>
    </>
  );
}

const FORMAT = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

function relativeTime(iso: string): string {
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return FORMAT.format(seconds, "second");
  if (abs < 3600) return FORMAT.format(Math.round(seconds / 60), "minute");
  if (abs < 86_400) return FORMAT.format(Math.round(seconds / 3600), "hour");
  if (abs < 30 * 86_400) return FORMAT.format(Math.round(seconds / 86_400), "day");
  return new Date(iso).toLocaleDateString();
}
