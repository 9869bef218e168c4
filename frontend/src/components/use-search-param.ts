"use client";

import { useSearchParams } from "next/navigation";

/**
 * Ids travel in search params (`/workspace/?id=...`): a static export has no
 * dynamic route segments. Components using this must sit under <Suspense>.
 */
export function useSearchParam(name: string): string | null {
  const value = useSearchParams().get(name);
  return value && value.trim() ? value : null;
}
