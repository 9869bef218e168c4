"use client";

import { Search, SlidersHorizontal } from "lucide-react";
import { useEffect, useId, useState } from "react";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import type { SortField, SortOrder } from "@/lib/api/resources";
import { statusLabel } from "@/lib/board/store";
import { cn } from "@/lib/utils";
import { NativeSelect } from "./dialog";

export interface BoardQuery {
  q: string;
  status: string;
  kind: string;
  tag: string;
  sort: SortField;
  order: SortOrder;
}

/** The board's own order by default: the order people arranged the cards in (kept on the server). */
export const DEFAULT_QUERY: BoardQuery = { q: "", status: "", kind: "", tag: "", sort: "position", order: "asc" };

const SORTS: { value: `${SortField}:${SortOrder}`; label: string }[] = [
  { value: "position:asc", label: "Board order" },
  { value: "created_at:desc", label: "Newest first" },
  { value: "created_at:asc", label: "Oldest first" },
  { value: "updated_at:desc", label: "Recently updated" },
  { value: "updated_at:asc", label: "Least recently updated" },
  { value: "title:asc", label: "Title A–Z" },
  { value: "title:desc", label: "Title Z–A" },
];

/** Search (debounced, the hub's full-text `q`), filters by status/kind/tag, sort. */
export function BoardToolbar({
  query,
  onChange,
  facets,
}: {
  query: BoardQuery;
  onChange: (query: BoardQuery) => void;
  facets: { statuses: string[]; kinds: string[]; tags: string[] };
}) {
  const ids = { q: useId(), status: useId(), kind: useId(), tag: useId(), sort: useId(), filters: useId() };
  const [text, setText] = useState(query.q);
  // The search the box and `query` last agreed on. `query.q` moving away from it is a change made outside
  // (Clear filters): the box follows it, and the debounce below has nothing left to put back.
  const [agreed, setAgreed] = useState(query.q);
  if (query.q !== agreed) {
    setAgreed(query.q);
    setText(query.q);
  }
  const [filtersOpen, setFiltersOpen] = useState(false);
  const active = [query.status, query.kind, query.tag].filter(Boolean).length;

  useEffect(() => {
    if (text === query.q) return;
    const handle = setTimeout(() => {
      setAgreed(text);
      onChange({ ...query, q: text });
    }, 300);
    return () => clearTimeout(handle);
  }, [text, query, onChange]);

  const withCurrent = (values: string[], current: string) => (current && !values.includes(current) ? [...values, current] : values);

  return (
    <div role="search" aria-label="Filter cards" className="mb-4 grid gap-3 sm:grid-cols-2 lg:grid-cols-[minmax(12rem,2fr)_repeat(4,minmax(0,1fr))]">
      <div className="grid gap-1.5">
        <Label htmlFor={ids.q}>Search</Label>
        <div className="relative">
          <Search className="pointer-events-none absolute top-1/2 left-2.5 size-4 -translate-y-1/2 text-muted-foreground" aria-hidden="true" />
          <Input
            id={ids.q}
            type="search"
            placeholder="Title or description"
            className="pl-8"
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
        </div>
      </div>
      <Button
        type="button"
        variant="outline"
        size="sm"
        className="w-fit sm:hidden"
        aria-expanded={filtersOpen}
        aria-controls={ids.filters}
        onClick={() => setFiltersOpen((v) => !v)}
      >
        <SlidersHorizontal aria-hidden="true" /> Filters{active > 0 ? ` (${active})` : ""}
      </Button>
      {/* On a phone the four menus fold away behind "Filters" so the cards come first; wider, they sit in the row. */}
      <div id={ids.filters} className={cn("gap-3 sm:contents", filtersOpen ? "grid" : "hidden")}>
      <div className="grid gap-1.5">
        <Label htmlFor={ids.status}>Column</Label>
        <NativeSelect className="w-full min-w-0" id={ids.status} value={query.status} onChange={(e) => onChange({ ...query, status: e.target.value })}>
          <option value="">All columns</option>
          {withCurrent(facets.statuses, query.status).map((s) => (
            <option key={s} value={s}>
              {statusLabel(s)}
            </option>
          ))}
        </NativeSelect>
      </div>
      <div className="grid gap-1.5">
        <Label htmlFor={ids.kind}>Type</Label>
        <NativeSelect className="w-full min-w-0" id={ids.kind} value={query.kind} onChange={(e) => onChange({ ...query, kind: e.target.value })}>
          <option value="">All types</option>
          {withCurrent(facets.kinds, query.kind).map((k) => (
            <option key={k} value={k}>
              {statusLabel(k)}
            </option>
          ))}
        </NativeSelect>
      </div>
      <div className="grid gap-1.5">
        <Label htmlFor={ids.tag}>Tag</Label>
        <NativeSelect className="w-full min-w-0" id={ids.tag} value={query.tag} onChange={(e) => onChange({ ...query, tag: e.target.value })}>
          <option value="">All tags</option>
          {withCurrent(facets.tags, query.tag).map((t) => (
            <option key={t} value={t}>
              #{t}
            </option>
          ))}
        </NativeSelect>
      </div>
      <div className="grid gap-1.5">
        <Label htmlFor={ids.sort}>Sort</Label>
        <NativeSelect
          className="w-full min-w-0"
          id={ids.sort}
          value={`${query.sort}:${query.order}`}
          onChange={(e) => {
            const [sort, order] = e.target.value.split(":") as [SortField, SortOrder];
            onChange({ ...query, sort, order });
          }}
        >
          {SORTS.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </NativeSelect>
      </div>
      </div>
    </div>
  );
}
