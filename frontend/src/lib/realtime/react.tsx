"use client";

import { createContext, useContext, useEffect, useEffectEvent, useState, useSyncExternalStore, type ReactNode } from "react";
import { type HubError } from "../errors";
import type { ChannelHandlers, ChannelStatus, SubscribedContext } from "./channel";
import type { ConnectionSnapshot, RealtimeClient } from "./client";
import { watchPresence } from "./presence";
import type { PresenceMember, StreamPosition } from "./types";

const RealtimeContext = createContext<RealtimeClient | null>(null);

/**
 * Makes `client` available to the hooks below and holds its connection open
 * while mounted. Create the client once per tab (module scope or a lazy
 * singleton), not per render: StrictMode's extra mount then reuses the same
 * socket, because the client delays its disconnect past the remount.
 */
export function RealtimeProvider({ client, children }: { client: RealtimeClient; children: ReactNode }) {
  useEffect(() => client.retain(), [client]);
  return <RealtimeContext.Provider value={client}>{children}</RealtimeContext.Provider>;
}

export function useRealtime(): RealtimeClient {
  const client = useContext(RealtimeContext);
  if (!client) throw new Error("useRealtime must be used inside <RealtimeProvider>");
  return client;
}

export function useConnectionState(): ConnectionSnapshot {
  const client = useRealtime();
  return useSyncExternalStore(client.onStateChange, client.getSnapshot, client.getSnapshot);
}

export interface ChannelView {
  status: ChannelStatus | "idle";
  error: HubError | null;
  context: SubscribedContext | null;
}

const IDLE: ChannelView = { status: "idle", error: null, context: null };

/**
 * Subscribe while mounted (`channel` null = not now). Handlers may change on
 * every render without resubscribing; they always see the latest props.
 */
export function useChannel<T = unknown>(channel: string | null, handlers: ChannelHandlers<T> = {}): ChannelView {
  const client = useRealtime();
  const [view, setView] = useState<{ channel: string | null; view: ChannelView }>({ channel: null, view: IDLE });

  const dispatch = useEffectEvent(<K extends keyof ChannelHandlers<T>>(name: K, args: Parameters<NonNullable<ChannelHandlers<T>[K]>>) => {
    const handler = handlers[name] as ((...a: unknown[]) => void) | undefined;
    handler?.(...args);
  });

  useEffect(() => {
    if (channel === null) return;
    const set = (patch: Partial<ChannelView>) =>
      setView((prev) => ({ channel, view: { ...(prev.channel === channel ? prev.view : IDLE), ...patch } }));
    const subscription = client.subscribe<T>(channel, {
      onPublication: (publication) => dispatch("onPublication", [publication]),
      onSubscribed: (context) => {
        set({ context, error: null });
        dispatch("onSubscribed", [context]);
      },
      onReload: (reason, context) => dispatch("onReload", [reason, context]),
      onPresence: (diff) => dispatch("onPresence", [diff]),
      onUnsubscribed: (info) => dispatch("onUnsubscribed", [info]),
      onError: (error) => {
        set({ error });
        dispatch("onError", [error]);
      },
      onStatus: (status) => {
        set({ status });
        dispatch("onStatus", [status]);
      },
    });
    return () => subscription.unsubscribe();
  }, [client, channel]);

  return channel !== null && view.channel === channel ? view.view : IDLE;
}

/** Who is on a channel, and whether the list may be out of date (see {@link watchPresence}). */
export interface PresenceView {
  /** One entry per connected client. */
  members: PresenceMember[];
  /**
   * The connection dropped (until the resubscription's snapshot), the last
   * snapshot failed (asked again), or the client halted, was released or
   * closed: those listed may have left, and others come, unannounced. Cleared
   * by the next snapshot.
   */
  stale: boolean;
}

/** Members present on a channel (one entry per connected client), and whether that list may be out of date. */
export function usePresence(channel: string | null): PresenceView {
  const client = useRealtime();
  const [state, setState] = useState<{ channel: string | null; view: PresenceView }>({ channel: null, view: NO_PRESENCE });

  useEffect(() => {
    if (channel === null) return;
    return watchPresence(client, channel, (members, { stale }) => setState({ channel, view: { members, stale } }));
  }, [client, channel]);

  return channel !== null && state.channel === channel ? state.view : NO_PRESENCE;
}

const NO_PRESENCE: PresenceView = { members: [], stale: false };

export type { StreamPosition };
