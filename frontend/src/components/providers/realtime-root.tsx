"use client";

import { useState, type ReactNode } from "react";
import { RealtimeProvider } from "@/lib/realtime/react";
import { getServices } from "@/lib/services";

/** The tab's single realtime client; mount it only in the browser, for a signed-in user. */
export function RealtimeRoot({ children }: { children: ReactNode }) {
  const [client] = useState(() => getServices().realtime);
  return <RealtimeProvider client={client}>{children}</RealtimeProvider>;
}
