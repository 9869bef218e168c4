"use client";

import { CloudUpload, Loader2, Pencil } from "lucide-react";
import Link from "next/link";
import { useId } from "react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import type { Resource } from "@/lib/api/resources";
import { changedFields } from "@/lib/board/actions";
import { useConnectionState } from "@/lib/realtime/react";
import { cn } from "@/lib/utils";
import { statusLabel, type Conflict } from "@/lib/board/store";
import { NativeSelect } from "./dialog";
import { ConflictSummary } from "./resource-form-dialog";

export function resourceHref(resource: Pick<Resource, "workspace_id" | "id">): string {
  return `/workspace/resource/?ws=${encodeURIComponent(resource.workspace_id)}&id=${encodeURIComponent(resource.id)}`;
}

/**
 * One card: the title links to the detail page; the status select moves it
 * between columns (an optimistic edit); Edit opens the dialog.
 */
export function ResourceCard({
  resource,
  statuses,
  pending,
  draft = false,
  conflict,
  onMove,
  onEdit,
  onRetry,
  onKeepTheirs,
}: {
  /** With the local edit applied. */
  resource: Resource;
  statuses: string[];
  pending: boolean;
  /** Created here and not confirmed yet: no id of its own, nothing to do with it until then. */
  draft?: boolean;
  conflict?: Conflict;
  onMove: (status: string) => void;
  onEdit: () => void;
  onRetry: () => void;
  onKeepTheirs: () => void;
}) {
  const selectId = useId();
  const titleId = useId();
  const options = statuses.includes(resource.status) ? statuses : [...statuses, resource.status];
  const wanted = conflict ? changedFields(resource, conflict.patch) : null;
  return (
    <article
      aria-labelledby={titleId}
      data-testid="resource-card"
      data-resource-id={resource.id}
      data-status={resource.status}
      data-version={resource.version}
      data-pending={pending ? "true" : undefined}
      className={cn(
        "grid gap-3 rounded-lg border border-border bg-card p-3 text-card-foreground shadow-xs",
        pending && "border-dashed border-amber-500/70",
      )}
    >
      <div className="flex items-start justify-between gap-2">
        <h3 id={titleId} className="min-w-0 text-sm leading-snug font-medium break-words">
          {draft ? (
            resource.title
          ) : (
            <Link href={resourceHref(resource)} prefetch={false} className="hover:underline focus-visible:underline">
              {resource.title}
            </Link>
          )}
        </h3>
        {draft ? null : (
          <Button variant="ghost" size="icon" className="-mt-1 -mr-1 size-7" aria-label={`Edit ${resource.title}`} onClick={onEdit}>
            <Pencil aria-hidden="true" />
          </Button>
        )}
      </div>
      {resource.body ? <p className="line-clamp-2 text-xs text-muted-foreground">{resource.body}</p> : null}
      <div className="flex flex-wrap items-center gap-1.5">
        <Badge variant="secondary">{resource.kind}</Badge>
        {resource.tags.map((tag) => (
          <Badge key={tag} variant="outline">
            #{tag}
          </Badge>
        ))}
      </div>
      <div className="flex items-center gap-2">
        <label htmlFor={selectId} className="sr-only">
          Status of {resource.title}
        </label>
        <NativeSelect
          id={selectId}
          value={resource.status}
          disabled={draft}
          onChange={(e) => onMove(e.target.value)}
          className="h-8 flex-1 text-xs"
        >
          {options.map((s) => (
            <option key={s} value={s}>
              {statusLabel(s)}
            </option>
          ))}
        </NativeSelect>
        {pending ? <PendingNote /> : null}
      </div>
      {conflict ? (
        <div role="alert" data-testid="card-conflict" className="grid gap-2 rounded-md border border-amber-500/50 bg-amber-500/10 p-2 text-xs">
          <p>
            Changed by someone else first. Now: <ConflictSummary resource={resource} />.
            {wanted && Object.keys(wanted).length > 0 ? (
              <> Your change: {Object.entries(wanted).map(([k, v]) => `${k} → ${Array.isArray(v) ? v.join(", ") : String(v)}`).join("; ")}.</>
            ) : (
              <> It already matches your change.</>
            )}
          </p>
          <div className="flex gap-2">
            {wanted && Object.keys(wanted).length > 0 ? (
              <Button size="sm" className="h-7" onClick={onRetry}>
                Retry mine
              </Button>
            ) : null}
            <Button size="sm" variant="outline" className="h-7" onClick={onKeepTheirs}>
              Keep theirs
            </Button>
          </div>
        </div>
      ) : null}
    </article>
  );
}

/** A change of this card not confirmed yet: being saved, or (offline) waiting to be sent. */
export function PendingNote() {
  const { state } = useConnectionState();
  return state === "live" ? (
    <span className="flex items-center gap-1 text-xs text-muted-foreground" role="status" data-testid="card-pending">
      <Loader2 className="size-3 animate-spin" aria-hidden="true" /> Saving…
    </span>
  ) : (
    <span className="flex items-center gap-1 text-xs text-amber-700 dark:text-amber-300" role="status" data-testid="card-pending">
      <CloudUpload className="size-3" aria-hidden="true" /> Not sent yet
    </span>
  );
}
