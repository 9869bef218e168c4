"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo, useReducer, useState } from "react";
import { useToast } from "@/components/toaster";
import type { HubEvent } from "@/lib/api/types";
import { resourcesApi, type Resource, type ResourcePatch } from "@/lib/api/resources";
import { applyDelete, applyEdit, EditChain, savedUnseen, type DeleteOutcome, type EditOutcome } from "@/lib/board/actions";
import { boardRpc } from "@/lib/board/rpc";
import { boardReducer, initialBoardState, type BoardAction, type ResourceEvent } from "@/lib/board/store";
import { describeError } from "@/lib/error-messages";
import { HubError } from "@/lib/errors";
import { applyMadeEdit, applyResource, flattenPages, useResourceQuery, useResourcesQuery, useWorkspaceLive, type ResourceFilters } from "@/lib/queries";
import { usePresence } from "@/lib/realtime/react";
import { getServices } from "@/lib/services";

export type LoadStatus = "loading" | "ready" | "error";

export function useResourceApis() {
  return useMemo(() => {
    const { api, realtime } = getServices();
    // Reads over REST (the query hooks, pages of a listing); changes as RPCs through the socket's outbox
    // (a create or update too large for a socket frame over REST).
    const resources = resourcesApi(api);
    return { resources, rpc: boardRpc(realtime, resources) };
  }, []);
}

/** The server's copy a settled action carries (a reply, a conflict's newer version): the query cache takes it too. */
function settledResource(action: BoardAction): Resource | undefined {
  switch (action.type) {
    case "upsert":
      return action.resource;
    case "confirmed":
      return action.resource;
    case "conflicted":
      return action.current;
    case "draftSettled":
      return action.resource;
    default:
      return undefined;
  }
}

export interface LiveOptions {
  /** The signed-in user's id (their own `member.*` events change their role or access). */
  me?: string | null;
  /** Every other event of the workspace's channel (`workspace.*`, `member.*`), after the cache took it: the page's header and access follow them. */
  onEvent?: (event: HubEvent<unknown>) => void;
}

/**
 * The live part every board page shares: `workspace:<id>` followed through
 * `useWorkspaceLive` (its events go into the TanStack Query cache, and
 * `resource.*` also into the board's reducer), presence, and the reducer that
 * holds what the cache does not: local edits not confirmed yet, conflicts,
 * drafts, and the highest version seen per card. `dispatch` hands every
 * server copy it carries (replies, a conflict's newer version) to the cache as
 * well, so the listing and the board agree without waiting for the echo; and
 * an edit the hub made without sending its copy back, laid over the cached
 * copy (`applyMadeEdit`), as no echo or read will bring that card.
 */
function useLiveStore(workspaceId: string, options: LiveOptions) {
  const client = useQueryClient();
  const [state, rawDispatch] = useReducer(boardReducer, initialBoardState);
  const dispatch = useCallback(
    (action: BoardAction) => {
      rawDispatch(action);
      const resource = settledResource(action);
      if (resource) applyResource(client, resource, resource.deleted_at ? "soft" : null);
      // Made, unanswered: no event or read will bring the server's copy, so ours goes into the cache.
      if (action.type === "applied") applyMadeEdit(client, workspaceId, action.id, action.patch, action.version);
    },
    [client, workspaceId],
  );
  const live = useWorkspaceLive(workspaceId, {
    me: options.me ?? null,
    onEvent: (event) => {
      if (event.type.startsWith("resource.")) rawDispatch({ type: "event", event: event as unknown as ResourceEvent });
      else options.onEvent?.(event as unknown as HubEvent<unknown>);
    },
  });
  const presence = usePresence(live.channel.error ? null : `workspace:${workspaceId}`);
  return { state, dispatch, live, presence };
}

/**
 * The board of one workspace, kept live: the listing for `filters` is
 * `useResourcesQuery` (an infinite query over the cursor list, up to 500
 * cards, read once the channel's subscription stands; live events update its
 * pages in the cache), and the board's state is that listing with the
 * reducer's overlays on top (a replacing load of the cached items, applied at
 * render: no second copy to keep in step).
 */
export function useLiveResources(workspaceId: string, filters: ResourceFilters, options: LiveOptions = {}) {
  const { state: local, dispatch, live, presence } = useLiveStore(workspaceId, options);
  const list = useResourcesQuery(workspaceId, filters, { enabled: live.ready, autoLoadUpTo: MAX_CARDS });
  const { data } = list;
  const state = useMemo(
    () => (data ? boardReducer(local, { type: "loaded", items: flattenPages(data, (r: Resource) => r.id), replace: true }) : local),
    [local, data],
  );
  const loadStatus: LoadStatus = data ? "ready" : list.isError ? "error" : "loading";
  const { refetch } = list;
  const reload = useCallback(() => void refetch(), [refetch]);
  return { state, dispatch, ready: live.ready, loadStatus, loadError: data ? null : list.error, truncated: list.truncated, reload, channel: live.channel, presence };
}

/** One card (the detail page), deleted ones too: `useResourceQuery` with the same live store. */
export function useLiveResource(workspaceId: string, resourceId: string, options: LiveOptions = {}) {
  const { state: local, dispatch, live, presence } = useLiveStore(workspaceId, options);
  const query = useResourceQuery(workspaceId, resourceId, { enabled: live.ready });
  const { data } = query;
  const state = useMemo(() => (data ? boardReducer(local, { type: "upsert", resource: data }) : local), [local, data]);
  const loadStatus: LoadStatus = data ? "ready" : query.isError ? "error" : "loading";
  const { refetch } = query;
  const reload = useCallback(() => void refetch(), [refetch]);
  return { state, dispatch, ready: live.ready, loadStatus, loadError: query.error, reload, channel: live.channel, presence };
}

/** The board shows a workspace at once, up to this many cards. */
export const MAX_CARDS = 500;

/**
 * Optimistic edits with the toasts for failures (and for an edit made whose
 * card the server could not send back). Returns the outcome so a
 * form can put a 422's field errors on its fields. Edits go as RPCs through
 * the realtime client's outbox: made offline, they wait there and are sent
 * when the connection is back (the card shows them as pending meanwhile).
 */
export function useEditor(workspaceId: string, dispatch: (action: BoardAction) => void) {
  const apis = useResourceApis();
  const toast = useToast();
  const [chain] = useState(() => new EditChain());
  const edit = useCallback(
    async (
      id: string,
      patch: ResourcePatch,
      baseVersion: number,
      options: { quiet422?: boolean; quietUnreachable?: boolean } = {},
    ): Promise<EditOutcome> => {
      const outcome = await applyEdit({ api: apis.rpc, dispatch, workspaceId, chain }, id, patch, baseVersion);
      if (outcome.kind === "applied") toast({ pageOnly: true, ...savedUnseen() });
      if (outcome.kind === "failed") {
        const is422 = (outcome.error as { status?: number })?.status === 422;
        const unreachable = outcome.error instanceof HubError && outcome.error.local && outcome.error.code === "unavailable";
        if (!(is422 && options.quiet422) && !(unreachable && options.quietUnreachable)) {
          toast({ pageOnly: true, title: "The change was not saved", description: describeError(outcome.error), variant: "destructive" });
        }
      }
      return outcome;
    },
    [apis, dispatch, toast, workspaceId, chain],
  );
  const remove = useCallback(
    async (shown: Resource): Promise<DeleteOutcome> => {
      const outcome = await applyDelete({ api: apis.rpc, dispatch, workspaceId, chain }, shown);
      if (outcome.kind === "failed") {
        toast({ pageOnly: true, title: `“${shown.title}” was not deleted`, description: describeError(outcome.error), variant: "destructive" });
      }
      return outcome;
    },
    [apis, dispatch, toast, workspaceId, chain],
  );
  return useMemo(() => Object.assign((...args: Parameters<typeof edit>) => edit(...args), { remove }), [edit, remove]);
}

export type Editor = ReturnType<typeof useEditor>;

/** Presence entries carry the user id (a string from the hub; `{id}` in older typings). */
export function presenceUserId(user: unknown): string {
  if (typeof user === "string") return user;
  if (user && typeof user === "object" && typeof (user as { id?: unknown }).id === "string") return (user as { id: string }).id;
  return "?";
}

export type { Resource };
