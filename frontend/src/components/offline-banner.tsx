"use client";

import { CloudOff } from "lucide-react";
import { useConnectionState } from "@/lib/realtime/react";

/**
 * Says so when the realtime connection is down (after it was up once, or
 * while the browser is offline): what you see may be out of date, and changes
 * you make are kept and sent when the connection is back.
 */
export function OfflineBanner() {
  const { state, halted } = useConnectionState();
  const down = !halted && (state === "offline" || state === "reconnecting");
  return (
    <div role="status" aria-live="polite" data-testid="offline-banner" data-visible={down ? "true" : "false"}>
      {down ? (
        <div className="border-b border-amber-500/40 bg-amber-500/15 text-amber-950 dark:text-amber-100">
          <p className="mx-auto flex max-w-6xl items-center gap-2 px-4 py-2 text-sm">
            <CloudOff className="size-4 shrink-0" aria-hidden="true" />
            <span>
              <strong className="font-semibold">{state === "offline" ? "You are offline." : "Reconnecting…"}</strong> Changes you make
              are kept and sent when the connection is back.
            </span>
          </p>
        </div>
      ) : null}
    </div>
  );
}
