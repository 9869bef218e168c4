"use client";

import { useCallback, useEffect, useRef, useState, type Dispatch, type SetStateAction } from "react";
import { describeError } from "../error-messages";
import { appendPage } from "./live";
import { useToast } from "@/components/toaster";

export type PagesStatus = "loading" | "ready" | "error" | "more";

export interface CursorPage<T> {
  items: T[];
  next_cursor?: string | null;
}

export interface CursorPages<T> {
  items: T[];
  /** For live changes (events, the page's own edits) on top of what was read. */
  setItems: Dispatch<SetStateAction<T[]>>;
  cursor: string | null;
  status: PagesStatus;
  error: unknown;
  loadMore: () => void;
  /** Read the first page again (e.g. `onReload` after missed events). */
  reload: () => void;
}

/**
 * A cursor-paged list (`{items, next_cursor}`): the first page on mount and on
 * `reload`, more pages appended without repeats, one request in flight (a new
 * one aborts the last), and a toast when a further page fails (the first
 * page's failure is `status: "error"` for the page to show).
 * `fetchPage` must be stable (useCallback) — a new one reloads the list.
 */
export function useCursorPages<T>(
  fetchPage: (cursor: string | null, signal: AbortSignal) => Promise<CursorPage<T>>,
  keyOf: (item: T) => string | number,
  noun: string,
): CursorPages<T> {
  const toast = useToast();
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [status, setStatus] = useState<PagesStatus>("loading");
  const [error, setError] = useState<unknown>(null);
  const [generation, setGeneration] = useState(0);
  const request = useRef<AbortController | null>(null);
  const keyRef = useRef(keyOf);
  useEffect(() => {
    keyRef.current = keyOf;
  }, [keyOf]);

  const load = useCallback(
    async (after: string | null) => {
      request.current?.abort();
      const controller = new AbortController();
      request.current = controller;
      setStatus(after ? "more" : "loading");
      try {
        const page = await fetchPage(after, controller.signal);
        if (controller.signal.aborted) return;
        setItems((prev) => (after ? appendPage(prev, page.items, keyRef.current) : page.items));
        setCursor(page.next_cursor ?? null);
        setError(null);
        setStatus("ready");
      } catch (e) {
        if (controller.signal.aborted) return;
        setError(e);
        setStatus(after ? "ready" : "error");
        if (after) toast({ title: `Could not load more ${noun}`, description: describeError(e), variant: "destructive" });
      }
    },
    [fetchPage, noun, toast],
  );

  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect
    void load(null);
    return () => request.current?.abort();
  }, [load, generation]);

  const loadMore = useCallback(() => {
    if (cursor) void load(cursor);
  }, [cursor, load]);
  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  return { items, setItems, cursor, status, error, loadMore, reload };
}
