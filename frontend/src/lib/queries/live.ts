"use client";

import { useEffect, useState } from "react";
import { useQueryClient, type QueryClient } from "@tanstack/react-query";
import type { UnsubscribedInfo } from "../realtime/channel";
import type { DomainEvent } from "../realtime/events";
import { useChannel, type ChannelView } from "../realtime/react";
import type { Publication } from "../realtime/types";
import { workspacesFor } from "../api/workspaces";
import { getServices } from "../services";
import { applyWorkspaceEvent, dropWorkspace, setWorkspace, touchesActivity } from "./cache";
import { resourceKeys, workspaceKeys } from "./keys";

/** How long the first read waits for the channel's subscription before it goes without it. */
export const LOAD_WAIT_MS = 1_500;

export interface WorkspaceLiveOptions {
  /** The signed-in user's id: their own `member.*` events change their role or access. */
  me?: string | null;
  /** Every event of the channel, after the cache took it (the page's own reactions: titles, access lost, toasts). */
  onEvent?: (event: DomainEvent) => void;
  /** The hub dropped the subscription (e.g. membership revoked). */
  onUnsubscribed?: (info: UnsubscribedInfo) => void;
  /** After the cache was invalidated because events were missed. */
  onReload?: () => void;
  /** How long the first read waits for the subscription (default {@link LOAD_WAIT_MS}). */
  loadWaitMs?: number;
}

/** A channel publication as a domain event, or null for anything else (a service's own JSON). */
export function asDomainEvent(data: unknown): DomainEvent | null {
  if (typeof data !== "object" || data === null) return null;
  const event = data as { type?: unknown; data?: unknown };
  return typeof event.type === "string" && typeof event.data === "object" && event.data !== null ? (data as DomainEvent) : null;
}

/**
 * Keep the cached queries of workspace `workspaceId` live from
 * `workspace:<id>`: `resource.*` into the resources listings, the trash and
 * the detail; `member.*` into the members; `invitation.*` into the pending
 * invitations; `workspace.*` into the workspace and the list of workspaces;
 * the activity feed is marked stale. `onReload` (the hub could not replay
 * what was missed) invalidates all of the workspace's queries.
 *
 * `ready` turns true once the subscription stands (or after
 * {@link LOAD_WAIT_MS} without it, or when it failed): pass it as `enabled`
 * to the queries, so the first read runs once and misses nothing. If the
 * reads went early, they run once more when the subscription arrives.
 *
 * Data kept from an earlier visit is read again when its events may have
 * gone unapplied meanwhile: the last of these hooks for a workspace marks the
 * workspace's queries stale when it goes (unless another takes over at once,
 * a page replacing another that keeps the workspace live too), and so does a
 * new subscription (nobody listened to the channel meanwhile). A listener
 * that keeps the channel without applying its events (the activity page's
 * `useChannel`) does not keep the cache current.
 */
export function useWorkspaceLive(workspaceId: string | null, options: WorkspaceLiveOptions = {}): { ready: boolean; channel: ChannelView } {
  const client = useQueryClient();
  const [ready, setReady] = useState<{ id: string | null; early: boolean } | null>(null);
  const isReady = ready !== null && ready.id === workspaceId;
  const waitMs = options.loadWaitMs ?? LOAD_WAIT_MS;

  useEffect(() => (workspaceId === null ? undefined : keepCurrent(client, workspaceId)), [client, workspaceId]);

  useEffect(() => {
    if (workspaceId === null || isReady) return;
    const timer = setTimeout(() => setReady({ id: workspaceId, early: true }), waitMs);
    return () => clearTimeout(timer);
  }, [workspaceId, isReady, waitMs]);

  const channel = useChannel<unknown>(workspaceId === null ? null : `workspace:${workspaceId}`, {
    onPublication(publication: Publication<unknown>) {
      const event = asDomainEvent(publication.data);
      if (!event || workspaceId === null) return;
      applyWorkspaceEvent(client, workspaceId, event, options.me ?? null);
      if (touchesActivity(event)) void client.invalidateQueries({ queryKey: workspaceKeys.activity(workspaceId), refetchType: "none" });
      options.onEvent?.(event);
    },
    onSubscribed(context) {
      if (workspaceId === null) return;
      if (!isReady) {
        setReady({ id: workspaceId, early: false });
        // A new subscription, not resumed: what the cache holds of this workspace (from an
        // earlier visit, still fresh by staleTime) went without its events meanwhile.
        if (!context.resumed && !context.joined) void client.invalidateQueries({ queryKey: workspaceKeys.all(workspaceId) });
      } else if (ready.early) {
        // Read before the subscription stood: read again, so nothing in between is missed.
        setReady({ id: workspaceId, early: false });
        void client.invalidateQueries({ queryKey: workspaceKeys.all(workspaceId) });
      }
    },
    onError() {
      if (workspaceId !== null && !isReady) setReady({ id: workspaceId, early: false });
    },
    onReload() {
      if (workspaceId === null) return;
      void client.invalidateQueries({ queryKey: workspaceKeys.all(workspaceId) });
      options.onReload?.();
    },
    onUnsubscribed(info) {
      options.onUnsubscribed?.(info);
    },
  });
  return { ready: isReady, channel };
}

/** Per query cache, how many mounted {@link useWorkspaceLive} put each workspace's events into it. */
const keepers = new WeakMap<QueryClient, Map<string, number>>();

/**
 * Count one more hook putting `workspaceId`'s events into `client`'s cache;
 * the returned function counts it out. When the last one goes, and no other
 * came by the end of the task (React runs the cleanup of the page that goes
 * and the effects of the page that comes in one go, and no event can arrive
 * in between), the workspace's queries are marked stale without a read: the
 * events from now on go unapplied, so whoever shows the data next reads it.
 */
function keepCurrent(client: QueryClient, workspaceId: string): () => void {
  let counts = keepers.get(client);
  if (!counts) keepers.set(client, (counts = new Map()));
  const held = counts;
  held.set(workspaceId, (held.get(workspaceId) ?? 0) + 1);
  return () => {
    const left = (held.get(workspaceId) ?? 1) - 1;
    if (left > 0) {
      held.set(workspaceId, left);
      return;
    }
    held.delete(workspaceId);
    queueMicrotask(() => {
      if (!held.has(workspaceId)) void client.invalidateQueries({ queryKey: workspaceKeys.all(workspaceId), refetchType: "none" });
    });
  };
}

/**
 * What an event on the user's own channel (`user:<id>`) means for the list of
 * workspaces: added to one (or its role changed) → read it and put it in;
 * removed or deleted → out. RealtimeRoot applies it to every event of the
 * signed-in user's channel, so the list is current on every page.
 */
export function applyUserEvent(client: QueryClient, event: DomainEvent, me: string): void {
  switch (event.type) {
    case "member.added":
    case "member.updated": {
      if (event.data.user_id !== me || !client.getQueryData(workspaceKeys.list())) return;
      const id = event.data.workspace_id;
      workspacesFor(getServices().api)
        .get(id)
        .then((workspace) => setWorkspace(client, workspace))
        .catch(() => {});
      return;
    }
    case "member.removed":
      if (event.data.user_id === me) dropWorkspace(client, event.data.workspace_id);
      return;
    case "workspace.deleted":
      dropWorkspace(client, event.data.id);
      return;
    default:
      return;
  }
}

export { resourceKeys, workspaceKeys };
