"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { EmptyState, ErrorState, LoadingState } from "@/components/states";
import { useSearchParam } from "@/components/use-search-param";
import { useToast } from "@/components/toaster";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { WorkspaceNav } from "@/components/workspace-nav";
import type { HubEvent } from "@/lib/api/types";
import { workspacesFor, type ActivityPublic, type MyWorkspace } from "@/lib/api/workspaces";
import { describeError } from "@/lib/error-messages";
import { useChannel } from "@/lib/realtime/react";
import { getServices } from "@/lib/services";
import { appendPage, describeActivity, isActivityEvent, mergeActivity } from "@/lib/workspaces/live";
import { useWorkspace } from "@/lib/workspaces/use-workspace";

const PAGE_SIZE = 30;
/** Events come in bursts (a bulk edit): one look at the first page per burst. */
const REFETCH_DELAY_MS = 150;

const api = () => workspacesFor(getServices().api);

/** `/workspace/activity/?id=`: newest first, Load more, live: an event makes it read the first page again and merge it in. */
export function ActivityView() {
  const id = useSearchParam("id");
  if (!id) return <MissingParam what="workspace" />;
  return <ActivityFeed key={id} workspaceId={id} />;
}

function ActivityFeed({ workspaceId }: { workspaceId: string }) {
  const toast = useToast();
  const workspace = useWorkspace(workspaceId);
  const [entries, setEntries] = useState<ActivityPublic[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [status, setStatus] = useState<"loading" | "ready" | "error" | "more">("loading");
  const [error, setError] = useState<unknown>(null);
  const [names, setNames] = useState<Record<string, string>>({});
  const [reload, setReload] = useState(0);
  const [fresh, setFresh] = useState<ReadonlySet<number>>(new Set());
  const request = useRef<AbortController | null>(null);
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const headRequest = useRef<AbortController | null>(null);
  const shown = useRef<ActivityPublic[]>([]);
  useEffect(() => {
    shown.current = entries;
  }, [entries]);

  const load = useCallback(
    async (after: string | null) => {
      request.current?.abort();
      const controller = new AbortController();
      request.current = controller;
      setStatus(after ? "more" : "loading");
      try {
        const page = await api().activity(workspaceId, { limit: PAGE_SIZE, cursor: after }, { signal: controller.signal });
        if (controller.signal.aborted) return;
        setEntries((prev) => (after ? appendPage(prev, page.items, (e) => e.id) : page.items));
        setCursor(page.next_cursor);
        setError(null);
        setStatus("ready");
      } catch (e) {
        if (controller.signal.aborted) return;
        setError(e);
        setStatus(after ? "ready" : "error");
        if (after) toast({ title: "Could not load more activity", description: describeError(e), variant: "destructive" });
      }
    },
    [workspaceId, toast],
  );

  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect
    void load(null);
    return () => request.current?.abort();
  }, [load, reload]);

  // Who is who: actors are user ids; members give them names (a former member stays an id).
  useEffect(() => {
    const controller = new AbortController();
    api()
      .members(workspaceId, { limit: 100 }, { signal: controller.signal })
      .then((page) => setNames((prev) => ({ ...prev, ...Object.fromEntries(page.items.map((m) => [m.user_id, m.display_name])) })))
      .catch(() => {});
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
  }, [workspaceId]);

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
      setReload((n) => n + 1);
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
        {status === "error" ? <ErrorState title="Could not load the activity" error={error} onRetry={() => setReload((n) => n + 1)} /> : null}
        {status === "ready" && entries.length === 0 ? (
          <EmptyState title="No activity yet" description="Changes to resources and members will show up here as they happen." />
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
                    <span className="font-medium">{entry.actor_id ? (names[entry.actor_id] ?? "A former member") : "The system"}</span>{" "}
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
        {cursor && status !== "error" ? (
          <div className="flex justify-center">
            <Button variant="outline" onClick={() => void load(cursor)} disabled={status === "more"}>
              {status === "more" ? "Loading…" : "Load more"}
            </Button>
          </div>
        ) : null}
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
