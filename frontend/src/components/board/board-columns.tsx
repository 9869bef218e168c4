"use client";

import {
  closestCenter,
  DndContext,
  DragOverlay,
  KeyboardCode,
  KeyboardSensor,
  PointerSensor,
  pointerWithin,
  rectIntersection,
  useDroppable,
  useSensor,
  useSensors,
  type Announcements,
  type CollisionDetection,
  type DragEndEvent,
  type DragMoveEvent,
  type DragStartEvent,
  type KeyboardCoordinateGetter,
} from "@dnd-kit/core";
import { SortableContext, verticalListSortingStrategy } from "@dnd-kit/sortable";
import { Plus } from "lucide-react";
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import type { Resource } from "@/lib/api/resources";
import { originOf, sameTarget, stepTarget, targetFromOver, targetPlace, type DropTarget, type Step } from "@/lib/board/order";
import { resourceFormSchema } from "@/lib/board/schema";
import { statusLabel, type Column } from "@/lib/board/store";
import { cn } from "@/lib/utils";

/** A column's drop target id (cards use their resource id). */
const columnId = (status: string) => `column:${status}`;

interface Drag {
  id: string;
  keyboard: boolean;
  origin: DropTarget;
  target: DropTarget;
  /** Set on drop: moved, or left where it was. */
  dropped?: boolean;
}

const STEPS: Record<string, Step> = {
  [KeyboardCode.Up]: "up",
  [KeyboardCode.Down]: "down",
  [KeyboardCode.Left]: "left",
  [KeyboardCode.Right]: "right",
};

/**
 * The columns, sortable (@dnd-kit/sortable): a card dragged within its column
 * takes a new place there, dropped in another column it goes where the line
 * shows. The page turns the drop target into one update (status and an order
 * key between the new neighbours). By keyboard: focus the card's move handle,
 * Space or Enter picks it up, ↑/↓ move it within the column, ←/→ to the
 * previous/next column, Space or Enter drops it, Escape puts it back; every
 * step is announced ("… is in Done, position 2 of 3").
 *
 * `reorder`: the board shows its own order. Sorted by something else, a card
 * can only change column (it goes to the end of the column's order).
 */
export function BoardColumns({
  columns,
  reorder,
  titleOf,
  onMove,
  onCreateIn,
  onQuickAdd,
  renderCard,
  canCreate,
  canMove,
}: {
  columns: Column[];
  reorder: boolean;
  titleOf: (id: string) => string;
  onMove: (id: string, target: DropTarget) => void;
  onCreateIn: (status: string) => void;
  /** Quick add: a card with this title at the end of the column. */
  onQuickAdd: (status: string, title: string) => void;
  renderCard: (resource: Resource) => ReactNode;
  canCreate: boolean;
  /** Cards may be moved (the user's role allows changes); a drag under way when it turns false is cancelled at its drop. */
  canMove: boolean;
}) {
  const drag = useRef<Drag | null>(null);
  const latest = useRef({ columns, reorder, canMove });
  useEffect(() => {
    latest.current = { columns, reorder, canMove };
  }, [columns, reorder, canMove]);
  /** Where a card dragged into another column would go (a line shows the place). */
  const [hint, setHint] = useState<DropTarget | null>(null);
  /** The card being dragged: a copy of it follows the pointer (or the keys) while the card keeps its place. */
  const [held, setHeld] = useState<Resource | null>(null);

  function retarget(next: DropTarget) {
    const d = drag.current;
    if (!d || sameTarget(d.target, next)) return;
    d.target = next;
    setHint(next.status === d.origin.status ? null : next);
  }

  /** The drop target a keyboard target stands for: a card's place, or a column's end. */
  function overIdOf(d: Drag): string {
    const { columns, reorder } = latest.current;
    const column = columns.find((c) => c.status === d.target.status);
    if (!reorder || !column) return columnId(d.target.status);
    const list = d.target.status === d.origin.status ? column.items : column.items.filter((r) => r.id !== d.id);
    return list[d.target.index]?.id ?? columnId(d.target.status);
  }

  const keyboardSteps: KeyboardCoordinateGetter = (event, { context, currentCoordinates }) => {
    const step = STEPS[event.code];
    if (!step) return undefined;
    event.preventDefault();
    const d = drag.current;
    if (!d) return undefined;
    retarget(stepTarget(latest.current.columns, d.id, d.target, step, latest.current.reorder));
    // Where the card is drawn while it moves (what it is over comes from the target, not from geometry).
    const overId = overIdOf(d);
    const rect = context.droppableRects.get(overId);
    const size = context.collisionRect;
    if (!rect || !size) return currentCoordinates;
    if (overId.startsWith("column:")) {
      const column = latest.current.columns.find((c) => c.status === d.target.status);
      const last = column?.items.filter((r) => r.id !== d.id).at(-1);
      const lastRect = last ? context.droppableRects.get(last.id) : undefined;
      return { x: rect.left + 12, y: lastRect ? lastRect.bottom + 12 : rect.top + 40 };
    }
    if (d.target.status !== d.origin.status) return { x: rect.left + 12, y: rect.top - 12 };
    // Within its column: top-aligned going up, bottom-aligned going down (cards differ in height).
    const below = d.target.index > d.origin.index;
    return { x: rect.left, y: below ? rect.bottom - size.height : rect.top };
  };

  const sensors = useSensors(
    useSensor(PointerSensor, { activationConstraint: { distance: 6 } }),
    useSensor(KeyboardSensor, { coordinateGetter: keyboardSteps }),
  );

  const detect: CollisionDetection = (args) => {
    const d = drag.current;
    if (d?.keyboard) return [{ id: overIdOf(d) }];
    // The pointer: the column it is in, then the nearest card of that column (none: the column itself).
    const columnTargets = args.droppableContainers.filter((c) => (c.data.current as { type?: string } | undefined)?.type === "column");
    const hit = pointerWithin({ ...args, droppableContainers: columnTargets })[0] ?? rectIntersection({ ...args, droppableContainers: columnTargets })[0];
    if (!hit) return [];
    const status = String(hit.id).slice("column:".length);
    const cards = args.droppableContainers.filter((c) => {
      const data = c.data.current as { type?: string; status?: string } | undefined;
      return data?.type === "card" && data.status === status;
    });
    return cards.length ? closestCenter({ ...args, droppableContainers: cards }) : [hit];
  };

  function follow({ active, over }: DragMoveEvent) {
    const d = drag.current;
    if (!d || d.keyboard) return;
    if (!over) return retarget(d.origin);
    const { columns, reorder } = latest.current;
    const data = over.data.current as { type?: string; status?: string } | undefined;
    if (data?.type === "column" && data.status) {
      retarget(!reorder && data.status === d.origin.status ? d.origin : (targetFromOver(columns, d.id, { column: data.status }, false) ?? d.origin));
      return;
    }
    const moving = active.rect.current.translated;
    const after = moving ? moving.top + moving.height / 2 > over.rect.top + over.rect.height / 2 : false;
    retarget(targetFromOver(columns, d.id, { card: String(over.id) }, after) ?? d.origin);
  }

  function onDragStart({ active, activatorEvent }: DragStartEvent) {
    const id = String(active.id);
    const origin = originOf(latest.current.columns, id);
    drag.current = origin ? { id, keyboard: activatorEvent instanceof KeyboardEvent, origin, target: origin } : null;
    setHint(null);
    setHeld(latest.current.columns.flatMap((c) => c.items).find((r) => r.id === id) ?? null);
  }

  function onDragEnd(event: DragEndEvent) {
    const d = drag.current;
    setHint(null);
    setHeld(null);
    if (!d) return;
    if (!d.keyboard) {
      if (event.over) follow(event);
      else d.target = d.origin;
    }
    d.dropped = !sameTarget(d.origin, d.target);
    if (d.dropped) onMove(d.id, d.target);
  }

  function place(d: Drag): string {
    const label = statusLabel(d.target.status);
    if (!latest.current.reorder) return label;
    const { position, of } = targetPlace(latest.current.columns, d.id, d.target);
    return `${label}, position ${position} of ${of}`;
  }

  const title = (id: unknown) => `“${titleOf(String(id))}”`;
  const announcements: Announcements = {
    onDragStart: ({ active }) => {
      const d = drag.current;
      const how = latest.current.reorder
        ? "The up and down arrows move it within its column, left and right to another column; Space drops it, Escape cancels."
        : "The left and right arrows take it to another column; Space drops it, Escape cancels.";
      return d ? `Picked up ${title(active.id)} in ${place(d)}. ${how}` : `Picked up ${title(active.id)}.`;
    },
    onDragOver: ({ active }) => {
      const d = drag.current;
      return d ? `${title(active.id)} is in ${place(d)}.` : undefined;
    },
    onDragEnd: ({ active }) => {
      const d = drag.current;
      if (!d?.dropped) return `${title(active.id)} was put back where it was.`;
      return `${title(active.id)} was dropped in ${place(d)}.`;
    },
    onDragCancel: ({ active }) => `Moving ${title(active.id)} was cancelled; it stays where it was.`,
  };

  return (
    <DndContext
      sensors={sensors}
      collisionDetection={detect}
      onDragStart={onDragStart}
      onDragOver={follow}
      onDragMove={follow}
      onDragEnd={onDragEnd}
      cancelDrop={() => !latest.current.canMove}
      onDragCancel={() => {
        setHint(null);
        setHeld(null);
      }}
      accessibility={{
        announcements,
        screenReaderInstructions: {
          draggable:
            "To move this card, press Space or Enter, then the arrow keys: up and down within its column, left and right to another column. Space or Enter drops it; Escape cancels.",
        },
      }}
    >
      <div className="grid gap-4 md:grid-cols-2 xl:grid-cols-3" data-testid="board-columns">
        {columns.map((column) => (
          <BoardColumn
            key={column.status}
            column={column}
            hintIndex={hint?.status === column.status ? hint.index : null}
            onCreateIn={onCreateIn}
            onQuickAdd={onQuickAdd}
            canCreate={canCreate}
            renderCard={renderCard}
          />
        ))}
      </div>
      <DragOverlay dropAnimation={null}>{held ? <HeldCard resource={held} /> : null}</DragOverlay>
    </DndContext>
  );
}

/** What follows the pointer while a card is dragged: its title and the start of its description. */
function HeldCard({ resource }: { resource: Resource }) {
  return (
    <div aria-hidden="true" className="grid h-full cursor-grabbing gap-2 rounded-lg border border-border bg-card p-3 text-card-foreground shadow-lg ring-2 ring-primary/40">
      <p className="pl-5 text-sm leading-snug font-medium break-words">{resource.title}</p>
      {resource.body ? <p className="line-clamp-2 text-xs text-muted-foreground">{resource.body}</p> : null}
    </div>
  );
}

function BoardColumn({
  column,
  hintIndex,
  renderCard,
  onCreateIn,
  onQuickAdd,
  canCreate,
}: {
  column: Column;
  /** A card from another column would go here (index among this column's cards). */
  hintIndex: number | null;
  renderCard: (resource: Resource) => ReactNode;
  onCreateIn: (status: string) => void;
  onQuickAdd: (status: string, title: string) => void;
  canCreate: boolean;
}) {
  const { setNodeRef, isOver } = useDroppable({ id: columnId(column.status), data: { type: "column", status: column.status } });
  const headingId = `column-${column.status}`;
  const label = statusLabel(column.status);
  const line = <span aria-hidden="true" data-testid="drop-line" className="pointer-events-none absolute inset-x-1 -top-[7px] h-0.5 rounded-full bg-primary" />;
  return (
    <section
      ref={setNodeRef}
      aria-labelledby={headingId}
      data-testid={`column-${column.status}`}
      className={cn(
        "flex min-h-32 min-w-0 flex-col gap-3 rounded-xl border border-border bg-muted/40 p-3 transition-colors",
        (isOver || hintIndex !== null) && "border-primary/60 bg-primary/5",
      )}
    >
      <div className="flex items-center justify-between gap-2">
        <h2 id={headingId} className="text-sm font-semibold">
          {label} <span className="font-normal text-muted-foreground tabular-nums">({column.items.length})</span>
        </h2>
        {canCreate ? (
          <Button variant="ghost" size="icon" className="size-7" aria-label={`New card in ${label}`} onClick={() => onCreateIn(column.status)}>
            <Plus aria-hidden="true" />
          </Button>
        ) : null}
      </div>
      {column.items.length === 0 ? <p className="px-1 py-4 text-center text-xs text-muted-foreground">Nothing here.</p> : null}
      <SortableContext id={column.status} items={column.items.map((r) => r.id)} strategy={verticalListSortingStrategy}>
        {column.items.map((resource, index) => (
          <div key={resource.id} className="relative grid">
            {hintIndex === index ? line : null}
            {renderCard(resource)}
          </div>
        ))}
      </SortableContext>
      {hintIndex !== null && hintIndex >= column.items.length ? (
        <div className="relative h-0">{line}</div>
      ) : null}
      {canCreate ? <QuickAdd label={label} onAdd={(title) => onQuickAdd(column.status, title)} /> : null}
    </section>
  );
}

/**
 * "Add a card" at the foot of a column: a title, Enter, and the card is at the
 * end of the column (the field stays open for the next one); Escape closes it.
 */
function QuickAdd({ label, onAdd }: { label: string; onAdd: (title: string) => void }) {
  const [open, setOpen] = useState(false);
  const [title, setTitle] = useState("");
  const [error, setError] = useState<string | null>(null);
  const opener = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);

  useEffect(() => {
    if (open || !refocus.current) return;
    refocus.current = false;
    opener.current?.focus();
  }, [open]);

  function close() {
    refocus.current = true;
    setOpen(false);
    setTitle("");
    setError(null);
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    const parsed = resourceFormSchema.shape.title.safeParse(title);
    if (!parsed.success) {
      setError(parsed.error.issues[0]?.message ?? "Enter a title");
      return;
    }
    onAdd(parsed.data);
    setTitle("");
    setError(null);
  }

  if (!open) {
    return (
      <Button
        ref={opener}
        variant="ghost"
        size="sm"
        className="justify-start text-muted-foreground"
        aria-label={`Add a card to ${label}`}
        onClick={() => setOpen(true)}
      >
        <Plus aria-hidden="true" /> Add a card
      </Button>
    );
  }
  return (
    <form onSubmit={submit} className="grid gap-2" data-testid="quick-add">
      <Input
        autoFocus
        aria-label={`Title of a new card in ${label}`}
        aria-invalid={error ? true : undefined}
        placeholder="Title"
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            close();
          }
        }}
      />
      {error ? (
        <p role="alert" className="text-xs text-destructive">
          {error}
        </p>
      ) : null}
      <div className="flex gap-2">
        <Button type="submit" size="sm">
          Add
        </Button>
        <Button type="button" size="sm" variant="ghost" onClick={close}>
          Cancel
        </Button>
      </div>
    </form>
  );
}
