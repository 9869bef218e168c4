"use client";

import { useCallback } from "react";
import { useToast } from "@/components/toaster";
import { describeError } from "../error-messages";
import type { PagesStatus } from "../workspaces/use-cursor-pages";

interface InfiniteLike {
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
  isPending: boolean;
  isError: boolean;
  data: unknown;
  fetchNextPage: () => Promise<{ isError: boolean; error: unknown }>;
}

/**
 * An infinite query as the pages' *Load more* (`<LoadMore pages={…} />`) wants
 * it: `cursor` non-null while there is a next page, `status` `"more"` while it
 * loads, and a toast when a further page fails (the list stays as it is).
 */
export function usePager(query: InfiniteLike, noun: string): { cursor: string | null; status: PagesStatus; loadMore: () => void } {
  const toast = useToast();
  const { fetchNextPage } = query;
  const loadMore = useCallback(() => {
    void fetchNextPage().then((result) => {
      if (result.isError) toast({ title: `Could not load more ${noun}`, description: describeError(result.error), variant: "destructive" });
    });
  }, [fetchNextPage, noun, toast]);
  const status: PagesStatus = query.isPending ? "loading" : query.isError && query.data === undefined ? "error" : query.isFetchingNextPage ? "more" : "ready";
  return { cursor: query.hasNextPage ? "next" : null, status, loadMore };
}
