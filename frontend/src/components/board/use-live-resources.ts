"use client";

import { useCallback, useEffect, useEffectEvent, useMemo, useReducer, useRef, useState } from "react";
import { useToast } from "@/components/toaster";
import { resourcesApi, workspaceReadsApi, type Resource, type ResourcePatch } from "@/lib/api/resources";
import { applyEdit, type EditOutcome } from "@/lib/board/actions";
import { boardReducer, initialBoardState, type BoardAction, type ResourceEvent } from "@/lib/board/store";
import { describeError } from "@/lib/error-messages";
import { useChannel, usePresence } from "@/lib/realtime/react";
import type { Publication } from "@/lib/realtime/types";
import { getServices } from "@/lib/services";

export type LoadStatus = "loading" | "ready" | "error";

export function useResourceApis() {
  return useMemo(() => {
    const { api } = getServices();
    return { resources: resourcesApi(api), workspace: workspaceReadsApi(api) };
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
export function useLiveResources(workspaceId: string, loadKey: string, load: (signal: AbortSignal) => Promise<BoardAction>) {
  const [state, dispatch] = useReducer(boardReducer, initialBoardState);
  const [reloads, setReloads] = useState(0);
  const [result, setResult] = useState<{ key: string; status: LoadStatus; error: unknown }>({ key: "", status: "loading", error: null });
  const subscribedOnce = useRef(false);
  const channel = `workspace:${workspaceId}`;
  const runLoad = useEffectEvent((signal: AbortSignal) => load(signal));

  useEffect(() => {
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
  }, [loadKey, reloads]);

  const reload = useCallback(() => setReloads((n) => n + 1), []);

  const view = useChannel<ResourceEvent>(channel, {
    onPublication: (publication: Publication<ResourceEvent>) => {
      const event = publication.data;
      if (event && typeof event.type === "string" && event.type.startsWith("resource.")) dispatch({ type: "event", event });
    },
    onSubscribed: () => {
      if (subscribedOnce.current) return;
      subscribedOnce.current = true;
      reload();
    },
    onReload: () => reload(),
  });
  const presence = usePresence(view.error ? null : channel);

  const loadStatus: LoadStatus = result.key === loadKey ? result.status : "loading";
  return { state, dispatch, loadStatus, loadError: result.key === loadKey ? result.error : null, reload, channel: view, presence };
}

/**
 * Optimistic edits with the toasts for failures. Returns the outcome so a
 * form can put a 422's field errors on its fields.
 */
export function useEditor(workspaceId: string, dispatch: (action: BoardAction) => void) {
  const apis = useResourceApis();
  const toast = useToast();
  return useCallback(
    async (id: string, patch: ResourcePatch, baseVersion: number, options: { quiet422?: boolean } = {}): Promise<EditOutcome> => {
      const outcome = await applyEdit({ api: apis.resources, dispatch, workspaceId }, id, patch, baseVersion);
      if (outcome.kind === "failed") {
        const is422 = (outcome.error as { status?: number })?.status === 422;
        if (!(is422 && options.quiet422)) {
          toast({ title: "The change was not saved", description: describeError(outcome.error), variant: "destructive" });
        }
      }
      return outcome;
    },
    [apis, dispatch, toast, workspaceId],
  );
}

export type Editor = ReturnType<typeof useEditor>;

/** Presence entries carry the user id (a string from the hub; `{id}` in older typings). */
export function presenceUserId(user: unknown): string {
  if (typeof user === "string") return user;
  if (user && typeof user === "object" && typeof (user as { id?: unknown }).id === "string") return (user as { id: string }).id;
  return "?";
}

export type { Resource };
