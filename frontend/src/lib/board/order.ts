import { generateKeyBetween } from "fractional-indexing";

/**
 * Order within a column, kept on the server: every resource has a `position`,
 * an order key within its status (base-62 `[0-9A-Za-z]`, from the
 * `fractional-indexing` package), and a column reads by (position, id),
 * both compared as plain strings byte by byte — the way PostgreSQL's `C`
 * collation and the hub compare them, not `localeCompare` (which would put
 * `a` before `B`). Moving a card is one update of its `status` and a new
 * `position` between its new neighbours'. When that key grows long (past 32
 * characters: a gap dropped into again and again), the hub re-keys the card and
 * the run of long keys around it, in the same order, and sends each of them as
 * a `resource.updated` event (docs/domain.md).
 */

/** What ordering needs of a resource (`position` is absent only on a hub that predates it). */
export interface Positioned {
  id: string;
  position?: string | null;
}

/**
 * Byte order of the UTF-8 encodings (= code point order). JavaScript's `<`
 * compares UTF-16 code units, which agrees except where a surrogate (a code
 * point above U+FFFF) meets U+E000–U+FFFF; order keys are ASCII anyway.
 */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

/** A column's order: position, then id (the hub's `ORDER BY position, id`). */
export function compareByPosition(a: Positioned, b: Positioned): number {
  return compareBytes(a.position ?? "", b.position ?? "") || compareBytes(a.id, b.id);
}

export function sortByPosition<T extends Positioned>(items: readonly T[]): T[] {
  return [...items].sort(compareByPosition);
}

function between(a: string | null, b: string | null): string | null {
  try {
    return generateKeyBetween(a, b);
  } catch {
    return null; // a ≥ b, or a key this library did not make
  }
}

/**
 * The key for a card inserted at `index` of `list` (a column in order, without
 * the card itself): between the card before and the card after.
 *
 * Two cards can share a key (two people dropped between the same neighbours at
 * once; the hub orders them by id). Nothing fits between equal keys, so the
 * card after is the first one whose key is greater than the one before: the
 * new card then lands after the whole run of equal keys — one place lower than
 * aimed at, never out of order. Keys the library cannot read are stepped over
 * the same way (after the card before, else before the card after, else a
 * fresh first key).
 */
export function positionAt(list: readonly Positioned[], index: number): string {
  const at = Math.max(0, Math.min(index, list.length));
  const before = at > 0 ? (list[at - 1]!.position ?? null) : null;
  let next = at;
  while (before !== null && next < list.length && compareBytes(list[next]!.position ?? "", before) <= 0) next += 1;
  const after = next < list.length ? (list[next]!.position ?? null) : null;
  return between(before, after) ?? between(before, null) ?? between(null, after) ?? generateKeyBetween(null, null);
}

/** After every card of `list` (in any order): where a card added to the column goes. */
export function positionAtEnd(list: readonly Positioned[]): string {
  return positionAt(sortByPosition(list), list.length);
}

// ------------------------------------------------------------ drag and drop

/** A column as the board shows it: its status and its cards in order. */
export interface OrderedColumn<T extends Positioned = Positioned> {
  status: string;
  items: readonly T[];
}

/**
 * Where a dragged card would land: a column and the index it would have there
 * among the column's other cards (the card itself left out).
 */
export interface DropTarget {
  status: string;
  index: number;
}

export function columnOfCard(columns: readonly OrderedColumn[], id: string): OrderedColumn | undefined {
  return columns.find((c) => c.items.some((r) => r.id === id));
}

/** Where the card is now (its drop target if dropped without moving). */
export function originOf(columns: readonly OrderedColumn[], id: string): DropTarget | null {
  const column = columnOfCard(columns, id);
  if (!column) return null;
  return { status: column.status, index: column.items.findIndex((r) => r.id === id) };
}

/** The largest index the card can take in `status`: the column's length without the card. */
function lastIndex(columns: readonly OrderedColumn[], id: string, status: string): number {
  const column = columns.find((c) => c.status === status);
  if (!column) return 0;
  return column.items.filter((r) => r.id !== id).length;
}

export type Step = "up" | "down" | "left" | "right";

/**
 * The keyboard's next target: up/down one place within the column, left/right
 * to the previous/next column (in the board's order) at the same height, or at
 * its end if it is shorter. Without `reorder` (the board is sorted by
 * something else than its order) up and down do nothing and another column's
 * target is its end.
 */
export function stepTarget(columns: readonly OrderedColumn[], id: string, current: DropTarget, step: Step, reorder = true): DropTarget {
  const origin = originOf(columns, id);
  if (step === "up" || step === "down") {
    if (!reorder) return current;
    const max = lastIndex(columns, id, current.status);
    const index = step === "up" ? current.index - 1 : current.index + 1;
    return { status: current.status, index: Math.max(0, Math.min(index, max)) };
  }
  const at = columns.findIndex((c) => c.status === current.status);
  const next = columns[at + (step === "left" ? -1 : 1)];
  if (at < 0 || !next) return current;
  if (!reorder) return origin && next.status === origin.status ? origin : { status: next.status, index: lastIndex(columns, id, next.status) };
  return { status: next.status, index: Math.min(current.index, lastIndex(columns, id, next.status)) };
}

/**
 * The target a pointer is over. `over`: a column (its end) or a card; `after`:
 * the dragged card's middle is below the card's middle. In the card's own
 * column the list is sortable (dropping on a card takes its place, as
 * `arrayMove` does); in another column it goes before or after that card.
 */
export function targetFromOver(
  columns: readonly OrderedColumn[],
  id: string,
  over: { column: string } | { card: string },
  after: boolean,
): DropTarget | null {
  if ("column" in over) return { status: over.column, index: lastIndex(columns, id, over.column) };
  const column = columnOfCard(columns, over.card);
  if (!column) return null;
  if (column.items.some((r) => r.id === id)) return { status: column.status, index: column.items.findIndex((r) => r.id === over.card) };
  const index = column.items.findIndex((r) => r.id === over.card);
  return { status: column.status, index: index + (after ? 1 : 0) };
}

export function sameTarget(a: DropTarget | null, b: DropTarget | null): boolean {
  return a === b || (a !== null && b !== null && a.status === b.status && a.index === b.index);
}

/** "In progress, position 2 of 3": where the target is, in words (`position` counts the card itself). */
export function targetPlace(columns: readonly OrderedColumn[], id: string, target: DropTarget): { position: number; of: number } {
  return { position: target.index + 1, of: lastIndex(columns, id, target.status) + 1 };
}

/**
 * The update a drop makes: the new status (when it changed) and the key
 * between the new neighbours; `null` when the card would stay where it is.
 */
export function planMove(
  columns: readonly OrderedColumn[],
  id: string,
  target: DropTarget,
): { status: string; position: string; statusChanged: boolean } | null {
  const origin = originOf(columns, id);
  if (!origin || sameTarget(origin, target)) return null;
  const column = columns.find((c) => c.status === target.status);
  const others = (column?.items ?? []).filter((r) => r.id !== id);
  return { status: target.status, position: positionAt(others, target.index), statusChanged: origin.status !== target.status };
}
