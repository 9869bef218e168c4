"use client";

import { useCallback, useEffect, useEffectEvent, useMemo, useReducer, useRef, useState } from "react";
import { useToast } from "@/components/toaster";
import type { HubEvent } from "@/lib/api/types";
import { resourcesApi, workspaceReadsApi, type Resource, type ResourcePatch } from "@/lib/api/resources";
import { applyDelete, applyEdit, EditChain, type DeleteOutcome, type EditOutcome } from "@/lib/board/actions";
import { boardRpc } from "@/lib/board/rpc";
import { boardReducer, initialBoardState, type BoardAction, type ResourceEvent } from "@/lib/board/store";
import { describeError } from "@/lib/error-messages";
import { useChannel, usePresence } from "@/lib/realtime/react";
import type { Publication } from "@/lib/realtime/types";
import { getServices } from "@/lib/services";

export type LoadStatus = "loading" | "ready" | "error";

/** How long the first load waits for the channel's subscription before it goes without it. */
const LOAD_WAIT_MS = 1_500;

export function useResourceApis() {
  return useMemo(() => {
    const { api, realtime } = getServices();
    // Reads over REST (pages of a listing); changes as RPCs through the socket's outbox.
    return { resources: resourcesApi(api), workspace: workspaceReadsApi(api), rpc: boardRpc(realtime) };
  }, []);
}

/**
 * The board store of one workspace, kept live: subscribes to
 * `workspace:<id>`, applies `resource.*` events, and loads over REST on
 * mount, whenever `loadKey` changes, on the first subscription (events may
 * have happened between the first load and the subscribe) and on every
 * `onReload` (the hub could not replay what was missed).
 *
 * `load` returns the action to apply (a page, or one resource).
 */
export function useLiveResources(
  workspaceId: string,
  loadKey: string,
  load: (signal: AbortSignal) => Promise<BoardAction>,
  /** Every other event of the workspace's channel (`workspace.*`, `member.*`): the page's header and access follow them. */
  onEvent?: (event: HubEvent<unknown>) => void,
) {
  const [state, dispatch] = useReducer(boardReducer, initialBoardState);
  const [reloads, setReloads] = useState(0);
  const [result, setResult] = useState<{ key: string; status: LoadStatus; error: unknown }>({ key: "", status: "loading", error: null });
  // The first load waits for the subscription (so it sees everything the channel
  // will not replay, and runs once); after LOAD_WAIT_MS it goes anyway and is
  // repeated once subscribed.
  const [started, setStarted] = useState(false);
  const loadedEarly = useRef(false);
  const channel = `workspace:${workspaceId}`;
  const runLoad = useEffectEvent((signal: AbortSignal) => load(signal));

  useEffect(() => {
    if (started) return;
    const timer = setTimeout(() => {
      loadedEarly.current = true;
      setStarted(true);
    }, LOAD_WAIT_MS);
    return () => clearTimeout(timer);
  }, [started]);

  useEffect(() => {
    if (!started) return;
    const controller = new AbortController();
    runLoad(controller.signal).then(
      (action) => {
        if (controller.signal.aborted) return;
        dispatch(action);
        setResult({ key: loadKey, status: "ready", error: null });
      },
      (error: unknown) => {
        if (controller.signal.aborted) return;
        setResult((prev) =>
          // A failed background reload keeps the board; a failed first load shows the error.
          prev.key === loadKey && prev.status === "ready" ? prev : { key: loadKey, status: "error", error },
        );
      },
    );
    return () => controller.abort();
  }, [started, loadKey, reloads]);

  const reload = useCallback(() => setReloads((n) => n + 1), []);

  const view = useChannel<ResourceEvent>(channel, {
    onPublication: (publication: Publication<ResourceEvent>) => {
      const event = publication.data;
      if (!event || typeof event.type !== "string") return;
      if (event.type.startsWith("resource.")) dispatch({ type: "event", event });
      else onEvent?.(event as HubEvent<unknown>);
    },
    onSubscribed: () => {
      if (!started) setStarted(true);
      else if (loadedEarly.current) {
        loadedEarly.current = false;
        reload();
      }
    },
    onError: () => setStarted(true),
    onReload: () => reload(),
  });
  const presence = usePresence(view.error ? null : channel);

  const loadStatus: LoadStatus = result.key === loadKey ? result.status : "loading";
  return { state, dispatch, loadStatus, loadError: result.key === loadKey ? result.error : null, reload, channel: view, presence };
}

/**
 * Optimistic edits with the toasts for failures. Returns the outcome so a
 * form can put a 422's field errors on its fields. Edits go as RPCs through
 * the realtime client's outbox: made offline, they wait there and are sent
 * when the connection is back (the card shows them as pending meanwhile).
 */
export function useEditor(workspaceId: string, dispatch: (action: BoardAction) => void) {
  const apis = useResourceApis();
  const toast = useToast();
  const [chain] = useState(() => new EditChain());
  const edit = useCallback(
    async (id: string, patch: ResourcePatch, baseVersion: number, options: { quiet422?: boolean } = {}): Promise<EditOutcome> => {
      const outcome = await applyEdit({ api: apis.rpc, dispatch, workspaceId, chain }, id, patch, baseVersion);
      if (outcome.kind === "failed") {
        const is422 = (outcome.error as { status?: number })?.status === 422;
        if (!(is422 && options.quiet422)) {
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
