"use client";

import { useConnectionState } from "@/lib/realtime/react";
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

export function ConnectionIndicator({ className }: { className?: string }) {
  const { state } = useConnectionState();
  return (
    <span role="status" aria-live="polite" data-state={state} className={cn("inline-flex items-center gap-2 text-xs text-muted-foreground", className)}>
      <span className={cn("size-2 rounded-full", DOT[state])} aria-hidden="true" />
      {LABEL[state]}
    </span>
  );
}
