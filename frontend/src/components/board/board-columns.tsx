"use client";

import {
  DndContext,
  KeyboardCode,
  KeyboardSensor,
  PointerSensor,
  rectIntersection,
  useDroppable,
  useSensor,
  useSensors,
  type Announcements,
  type DragEndEvent,
  type KeyboardCoordinateGetter,
} from "@dnd-kit/core";
import { Plus } from "lucide-react";
import type { ReactNode } from "react";
import { Button } from "@/components/ui/button";
import type { Resource } from "@/lib/api/resources";
import { statusLabel, type Column } from "@/lib/board/store";
import { cn } from "@/lib/utils";

/**
 * The columns as drop targets (@dnd-kit). By mouse or touch: drag a card by
 * its body to another column. By keyboard: focus the card's move handle,
 * Space or Enter picks it up, the arrow keys take it to the next or previous
 * column, Space or Enter drops it there, Escape puts it back. Screen readers
 * hear each step in words.
 */
export function BoardColumns({
  columns,
  titleOf,
  onMove,
  onCreateIn,
  renderCard,
  canCreate,
}: {
  columns: Column[];
  titleOf: (id: string) => string;
  onMove: (id: string, from: string, to: string) => void;
  onCreateIn: (status: string) => void;
  renderCard: (resource: Resource) => ReactNode;
  canCreate: boolean;
}) {
  const sensors = useSensors(
    useSensor(PointerSensor, { activationConstraint: { distance: 6 } }),
    useSensor(KeyboardSensor, { coordinateGetter: columnJumps }),
  );
  const announcements: Announcements = {
    onDragStart: ({ active }) =>
      `Picked up “${titleOf(String(active.id))}”. Use the arrow keys to take it to another column, Space to drop it there, Escape to cancel.`,
    onDragOver: ({ active, over }) =>
      over ? `“${titleOf(String(active.id))}” is over ${statusLabel(String(over.id))}.` : `“${titleOf(String(active.id))}” is not over a column.`,
    onDragEnd: ({ active, over }) =>
      over ? `“${titleOf(String(active.id))}” was dropped in ${statusLabel(String(over.id))}.` : `“${titleOf(String(active.id))}” was put back.`,
    onDragCancel: ({ active }) => `Moving “${titleOf(String(active.id))}” was cancelled; it stays where it was.`,
  };

  function onDragEnd({ active, over }: DragEndEvent) {
    const from = (active.data.current as { status?: string } | undefined)?.status;
    if (!over || !from || over.id === from) return;
    onMove(String(active.id), from, String(over.id));
  }

  return (
    <DndContext
      sensors={sensors}
      collisionDetection={rectIntersection}
      onDragEnd={onDragEnd}
      accessibility={{
        announcements,
        screenReaderInstructions: {
          draggable: "To move this card, press Space or Enter, then the arrow keys to choose a column, and Space or Enter to drop it. Escape cancels.",
        },
      }}
    >
      <div className="grid gap-4 md:grid-cols-2 xl:grid-cols-3" data-testid="board-columns">
        {columns.map((column) => (
          <BoardColumn key={column.status} column={column} onCreateIn={onCreateIn} canCreate={canCreate}>
            {column.items.map((resource) => renderCard(resource))}
          </BoardColumn>
        ))}
      </div>
    </DndContext>
  );
}

function BoardColumn({
  column,
  children,
  onCreateIn,
  canCreate,
}: {
  column: Column;
  children: ReactNode;
  onCreateIn: (status: string) => void;
  canCreate: boolean;
}) {
  const { setNodeRef, isOver } = useDroppable({ id: column.status });
  const headingId = `column-${column.status}`;
  const label = statusLabel(column.status);
  return (
    <section
      ref={setNodeRef}
      aria-labelledby={headingId}
      data-testid={`column-${column.status}`}
      className={cn(
        "flex min-h-32 min-w-0 flex-col gap-3 rounded-xl border border-border bg-muted/40 p-3 transition-colors",
        isOver && "border-primary/60 bg-primary/5",
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
      {children}
    </section>
  );
}

/**
 * Arrow keys move a picked-up card a whole column at a time (Right/Down: the
 * next column in the page's order, Left/Up: the previous one), to just inside
 * the column's top-left corner, so the drop lands in that column.
 */
const columnJumps: KeyboardCoordinateGetter = (event, { context }) => {
  const { active, over, droppableRects, droppableContainers } = context;
  if (!active) return undefined;
  const step =
    event.code === KeyboardCode.Right || event.code === KeyboardCode.Down ? 1 : event.code === KeyboardCode.Left || event.code === KeyboardCode.Up ? -1 : 0;
  if (step === 0) return undefined;
  event.preventDefault();
  const statuses = droppableContainers
    .getEnabled()
    .filter((c) => c.node.current)
    .sort((a, b) => (a.node.current!.compareDocumentPosition(b.node.current!) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1))
    .map((c) => String(c.id));
  const current = over ? String(over.id) : ((active.data.current as { status?: string } | undefined)?.status ?? "");
  const index = Math.min(Math.max(statuses.indexOf(current) + step, 0), statuses.length - 1);
  const rect = droppableRects.get(statuses[index] ?? "");
  if (!rect) return undefined;
  return { x: rect.left + 12, y: rect.top + 40 };
};
