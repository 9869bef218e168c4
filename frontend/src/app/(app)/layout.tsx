import type { ReactNode } from "react";
import { AppShell } from "@/components/app-shell";
import { RealtimeRoot } from "@/components/providers/realtime-root";
import { SessionGate } from "@/components/session-gate";

export default function AppLayout({ children }: { children: ReactNode }) {
  return (
    <SessionGate>
      <RealtimeRoot>
        <AppShell>{children}</AppShell>
      </RealtimeRoot>
    </SessionGate>
  );
}
