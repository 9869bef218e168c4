"use client";

import { useSortable } from "@dnd-kit/sortable";
import { CSS } from "@dnd-kit/utilities";
import { CloudUpload, GripVertical, Loader2, Pencil, Trash2 } from "lucide-react";
import Link from "next/link";
import { useId, type KeyboardEventHandler } from "react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import type { Resource } from "@/lib/api/resources";
import { changedFields } from "@/lib/board/actions";
import { useConnectionState } from "@/lib/realtime/react";
import { cn } from "@/lib/utils";
import { statusLabel, type Conflict } from "@/lib/board/store";
import { ConflictSummary } from "./resource-form-dialog";

export function resourceHref(resource: Pick<Resource, "workspace_id" | "id">): string {
  return `/workspace/resource/?ws=${encodeURIComponent(resource.workspace_id)}&id=${encodeURIComponent(resource.id)}`;
}

const FIELD_WORDS: Record<string, string> = { title: "title", body: "description", status: "column", tags: "tags", kind: "kind" };

function describeChange(patch: Record<string, unknown>): string {
  return Object.entries(patch)
    .map(([key, value]) => {
      if (key === "position") return "a new place in its column";
      const shown = key === "status" ? statusLabel(String(value)) : Array.isArray(value) ? value.join(", ") : String(value);
      return `${FIELD_WORDS[key] ?? key} → ${shown}`;
    })
    .join("; ");
}

/**
 * One card. Drag it by its body (mouse, touch) or by its move handle
 * (keyboard) to another place in its column or to another column (a sortable
 * item: with `reorder` off it is no drop target, so it only changes column);
 * the title links to the detail page; Edit
 * opens the dialog; Delete moves it to the Trash (with Undo in the toast).
 * `readOnly` (a viewer): no move handle, no Edit or Delete, not draggable.
 */
export function ResourceCard({
  resource,
  pending,
  draft = false,
  reorder = true,
  readOnly = false,
  conflict,
  onEdit,
  onDelete,
  onRetry,
  onKeepTheirs,
}: {
  /** With the local edit applied. */
  resource: Resource;
  pending: boolean;
  /** Created here and not confirmed yet: no id of its own, nothing to do with it until then. */
  draft?: boolean;
  /** The board shows its own order: the card is a place to drop another one. */
  reorder?: boolean;
  /** The user may not change cards (a viewer): nothing on it moves or changes it. */
  readOnly?: boolean;
  conflict?: Conflict;
  onEdit: () => void;
  onDelete: () => void;
  onRetry: () => void;
  onKeepTheirs: () => void;
}) {
  const titleId = useId();
  const wanted = conflict ? changedFields(resource, conflict.patch) : null;
  const { attributes, listeners, setNodeRef, setActivatorNodeRef, transform, transition, isDragging } = useSortable({
    id: resource.id,
    data: { type: "card", status: resource.status },
    disabled: draft || readOnly ? true : { draggable: false, droppable: !reorder },
    attributes: { roleDescription: "movable card" },
  });
  const { onKeyDown, ...pointer } = listeners ?? {};
  return (
    <article
      ref={setNodeRef}
      aria-labelledby={titleId}
      data-testid="resource-card"
      data-resource-id={resource.id}
      data-status={resource.status}
      data-version={resource.version}
      data-pending={pending ? "true" : undefined}
      data-position={resource.position}
      style={{ transform: CSS.Translate.toString(transform), transition }}
      className={cn(
        "grid gap-2 rounded-lg border border-border bg-card p-3 text-card-foreground shadow-xs",
        !draft && !readOnly && "cursor-grab",
        pending && "border-dashed border-amber-500/70",
        // The card keeps its place, faded, while a copy of it follows the pointer (the board's DragOverlay).
        isDragging && "opacity-40",
      )}
      {...pointer}
    >
      <div className="flex items-start gap-1">
        {draft || readOnly ? null : (
          <button
            type="button"
            ref={setActivatorNodeRef}
            {...attributes}
            onKeyDown={onKeyDown as KeyboardEventHandler<HTMLButtonElement> | undefined}
            aria-label={`Move ${resource.title}`}
            className="-mt-0.5 -ml-1 rounded p-0.5 text-muted-foreground hover:text-foreground focus-visible:ring-2 focus-visible:ring-ring focus-visible:outline-none"
          >
            <GripVertical className="size-4" aria-hidden="true" />
          </button>
        )}
        <h3 id={titleId} className="min-w-0 flex-1 text-sm leading-snug font-medium break-words">
          {draft ? (
            resource.title
          ) : (
            <Link href={resourceHref(resource)} prefetch={false} className="hover:underline focus-visible:underline">
              {resource.title}
            </Link>
          )}
        </h3>
        {draft || readOnly ? null : (
          <div className="-mt-1 -mr-1 flex shrink-0">
            <Button variant="ghost" size="icon" className="size-7" aria-label={`Edit ${resource.title}`} onClick={onEdit}>
              <Pencil aria-hidden="true" />
            </Button>
            <Button variant="ghost" size="icon" className="size-7" aria-label={`Delete ${resource.title}`} onClick={onDelete}>
              <Trash2 aria-hidden="true" />
            </Button>
          </div>
        )}
      </div>
      {resource.body ? <p className="line-clamp-2 text-xs text-muted-foreground">{resource.body}</p> : null}
      {resource.kind !== "task" || resource.tags.length > 0 ? (
        <div className="flex flex-wrap items-center gap-1.5">
          {resource.kind !== "task" ? <Badge variant="secondary">{resource.kind}</Badge> : null}
          {resource.tags.map((tag) => (
            <Badge key={tag} variant="outline">
              #{tag}
            </Badge>
          ))}
        </div>
      ) : null}
      {pending ? <PendingNote /> : null}
      {conflict ? (
        <div role="alert" data-testid="card-conflict" className="grid gap-2 rounded-md border border-amber-500/50 bg-amber-500/10 p-2 text-xs">
          <p>
            Changed by someone else first. Now: <ConflictSummary resource={resource} />.
            {wanted && Object.keys(wanted).length > 0 ? <> Your change: {describeChange(wanted)}.</> : <> It already matches your change.</>}
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
