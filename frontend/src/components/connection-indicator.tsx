"use client";

import { useConnectionState, useRealtime } from "@/lib/realtime/react";
import type { ConnectionState } from "@/lib/realtime/types";
import { cn } from "@/lib/utils";

const LABEL: Record<ConnectionState, string> = {
  connecting: "Connecting",
  live: "Live",
  reconnecting: "Reconnecting",
  offline: "Offline",
};

const DOT: Record<ConnectionState, string> = {
  connecting: "bg-amber-500 animate-pulse",
  live: "bg-emerald-500",
  reconnecting: "bg-amber-500 animate-pulse",
  offline: "bg-zinc-400",
};

/**
 * The realtime connection as a person sees it: live / reconnecting / offline.
 * When not live it is a button: retry now instead of waiting out the backoff.
 */
export function ConnectionIndicator({ className }: { className?: string }) {
  const client = useRealtime();
  const { state, lastClose, halted } = useConnectionState();
  const why = state !== "live" && lastClose?.reason ? ` (${lastClose.reason})` : "";
  const content = (
    <>
      <span className={cn("size-2 rounded-full", DOT[state])} aria-hidden="true" />
      <span>{LABEL[state]}</span>
    </>
  );
  const classes = cn("inline-flex items-center gap-2 rounded-md px-2 py-1 text-xs text-muted-foreground", className);
  return (
    <span role="status" aria-live="polite" data-testid="connection-state" data-state={state} data-halted={halted ?? undefined}>
      {state === "live" || state === "connecting" ? (
        <span className={classes} title={`Realtime: ${LABEL[state]}`}>
          {content}
        </span>
      ) : (
        <button
          type="button"
          className={cn(classes, "hover:bg-accent hover:text-accent-foreground")}
          title={`Realtime: ${LABEL[state]}${why}. Click to reconnect now.`}
          onClick={() => client.reconnect()}
        >
          {content}
        </button>
      )}
    </span>
  );
}
