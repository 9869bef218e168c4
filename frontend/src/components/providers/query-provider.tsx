"use client";

import { QueryClientProvider } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import { createQueryClient } from "@/lib/queries/client";

/**
 * The server-state cache (TanStack Query) for a signed-in session. It sits
 * inside SessionGate (through RealtimeRoot), so signing out drops it and the
 * next user starts with an empty cache. `client` is for tests.
 */
export function QueryProvider({ children, client }: { children: ReactNode; client?: ReturnType<typeof createQueryClient> }) {
  const [queryClient] = useState(() => client ?? createQueryClient());
  return <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>;
}
