import { generateKeyBetween } from "fractional-indexing";
import { describe, expect, it } from "vitest";
import {
  compareByPosition,
  compareBytes,
  originOf,
  planMove,
  positionAt,
  positionAtEnd,
  sortByPosition,
  stepTarget,
  targetFromOver,
  targetPlace,
  type OrderedColumn,
  type Positioned,
} from "../order";

const p = (id: string, position: string): Positioned => ({ id, position });
const ids = (list: readonly Positioned[]) => list.map((r) => r.id);

describe("byte order", () => {
  it("compares like bytes, not like a locale: digits < upper case < lower case", () => {
    const keys = ["a0", "Zz", "A1", "a", "0", "b", "aV", "az"];
    expect([...keys].sort(compareBytes)).toEqual(["0", "A1", "Zz", "a", "a0", "aV", "az", "b"]);
    // localeCompare would interleave cases: the reason not to use it.
    expect(["a", "B"].sort((x, y) => x.localeCompare(y))).toEqual(["a", "B"]);
    expect(["a", "B"].sort(compareBytes)).toEqual(["B", "a"]);
  });

  it("a prefix sorts first; equal strings are equal", () => {
    expect(compareBytes("a0", "a0V")).toBeLessThan(0);
    expect(compareBytes("a0V", "a0")).toBeGreaterThan(0);
    expect(compareBytes("a0", "a0")).toBe(0);
  });

  it("orders by code point where UTF-16 would not (a character above U+FFFF after U+FFFD)", () => {
    expect(compareBytes("\u{1F600}", "\uFFFD")).toBeGreaterThan(0);
    expect(compareBytes("\uFFFD", "\u{1F600}")).toBeLessThan(0);
    expect(compareBytes("\u{1F600}", "a")).toBeGreaterThan(0);
  });

  it("sorts a column by position, then id (ties)", () => {
    const list = [p("c", "a1"), p("b", "a0"), p("a", "a1"), p("d", "Zz")];
    expect(ids(sortByPosition(list))).toEqual(["d", "b", "a", "c"]);
    expect(compareByPosition(p("x", "a0"), p("y", "a0"))).toBeLessThan(0);
  });
});

describe("positionAt: the key between the new neighbours", () => {
  const column = [p("a", "a0"), p("b", "a1"), p("c", "a2")];

  it("between two cards, first, last, and in an empty column", () => {
    const middle = positionAt(column, 1);
    expect(compareBytes("a0", middle)).toBeLessThan(0);
    expect(compareBytes(middle, "a1")).toBeLessThan(0);
    expect(compareBytes(positionAt(column, 0), "a0")).toBeLessThan(0);
    expect(compareBytes(positionAt(column, 3), "a2")).toBeGreaterThan(0);
    expect(positionAt([], 0)).toBe(generateKeyBetween(null, null));
    expect(positionAt(column, 99)).toBe(positionAt(column, 3));
  });

  it("inserted where it aimed, many times over, the keys stay base 62 and in order", () => {
    let list = sortByPosition(column);
    for (let i = 0; i < 200; i += 1) {
      const index = (i * 7) % (list.length + 1);
      const key = positionAt(list, index);
      expect(key).toMatch(/^[0-9A-Za-z]+$/);
      const card = p(`n${i}`, key);
      const aimed = [...list.slice(0, index), card, ...list.slice(index)];
      list = sortByPosition([...list, card]);
      expect(ids(list)).toEqual(ids(aimed));
    }
  });

  it("equal keys: the card lands after the run of equals, before the next greater key", () => {
    const tied = [p("a", "a0"), p("b", "a1"), p("c", "a1"), p("d", "a2")];
    const key = positionAt(tied, 2); // aimed between b and c, which share a1
    expect(compareBytes(key, "a1")).toBeGreaterThan(0);
    expect(compareBytes(key, "a2")).toBeLessThan(0);
    expect(ids(sortByPosition([...tied, p("n", key)]))).toEqual(["a", "b", "c", "n", "d"]);
  });

  it("keys it cannot read are stepped over instead of failing", () => {
    expect(() => positionAt([p("a", "not a key!"), p("b", "a1")], 1)).not.toThrow();
    expect(() => positionAt([p("a", "a1"), p("b", "a0")], 1)).not.toThrow(); // out of order
    expect(compareBytes(positionAtEnd([p("a", "a5"), p("b", "a2")]), "a5")).toBeGreaterThan(0);
  });
});

describe("drop targets", () => {
  const columns: OrderedColumn[] = [
    { status: "open", items: [p("a", "a0"), p("b", "a1"), p("c", "a2")] },
    { status: "in_progress", items: [p("d", "a0")] },
    { status: "done", items: [] },
  ];

  it("the origin, and the keyboard's steps (up/down in the column, left/right to a column at the same height)", () => {
    const start = originOf(columns, "b")!;
    expect(start).toEqual({ status: "open", index: 1 });
    expect(stepTarget(columns, "b", start, "up")).toEqual({ status: "open", index: 0 });
    expect(stepTarget(columns, "b", { status: "open", index: 0 }, "up")).toEqual({ status: "open", index: 0 });
    expect(stepTarget(columns, "b", start, "down")).toEqual({ status: "open", index: 2 });
    expect(stepTarget(columns, "b", { status: "open", index: 2 }, "down")).toEqual({ status: "open", index: 2 });
    expect(stepTarget(columns, "b", start, "right")).toEqual({ status: "in_progress", index: 1 });
    expect(stepTarget(columns, "b", { status: "in_progress", index: 1 }, "right")).toEqual({ status: "done", index: 0 });
    expect(stepTarget(columns, "b", { status: "done", index: 0 }, "right")).toEqual({ status: "done", index: 0 });
    expect(stepTarget(columns, "b", start, "left")).toEqual(start);
    // In another column the card can go before the first and after the last.
    expect(stepTarget(columns, "b", { status: "in_progress", index: 1 }, "up")).toEqual({ status: "in_progress", index: 0 });
    expect(stepTarget(columns, "b", { status: "in_progress", index: 1 }, "down")).toEqual({ status: "in_progress", index: 1 });
  });

  it("sorted by something else: no reordering, another column's end", () => {
    const start = originOf(columns, "a")!;
    expect(stepTarget(columns, "a", start, "down", false)).toEqual(start);
    expect(stepTarget(columns, "a", start, "right", false)).toEqual({ status: "in_progress", index: 1 });
    expect(stepTarget(columns, "a", { status: "in_progress", index: 1 }, "left", false)).toEqual(start);
  });

  it("what a pointer is over: a column's end, a card's place in its own column, before or after a card elsewhere", () => {
    expect(targetFromOver(columns, "b", { column: "done" }, false)).toEqual({ status: "done", index: 0 });
    expect(targetFromOver(columns, "b", { column: "open" }, false)).toEqual({ status: "open", index: 2 });
    expect(targetFromOver(columns, "a", { card: "c" }, false)).toEqual({ status: "open", index: 2 });
    expect(targetFromOver(columns, "c", { card: "a" }, true)).toEqual({ status: "open", index: 0 });
    expect(targetFromOver(columns, "a", { card: "d" }, false)).toEqual({ status: "in_progress", index: 0 });
    expect(targetFromOver(columns, "a", { card: "d" }, true)).toEqual({ status: "in_progress", index: 1 });
    expect(targetFromOver(columns, "a", { card: "nope" }, true)).toBeNull();
  });

  it("the place in words counts the card itself", () => {
    expect(targetPlace(columns, "b", { status: "open", index: 2 })).toEqual({ position: 3, of: 3 });
    expect(targetPlace(columns, "b", { status: "in_progress", index: 0 })).toEqual({ position: 1, of: 2 });
  });

  it("planMove: nothing when it stays; otherwise the status and a key between the new neighbours", () => {
    expect(planMove(columns, "b", { status: "open", index: 1 })).toBeNull();
    const down = planMove(columns, "a", { status: "open", index: 2 })!;
    expect(down.statusChanged).toBe(false);
    expect(compareBytes(down.position, "a2")).toBeGreaterThan(0);
    const between = planMove(columns, "c", { status: "open", index: 1 })!;
    expect(ids(sortByPosition([p("a", "a0"), p("b", "a1"), p("c", between.position)]))).toEqual(["a", "c", "b"]);
    const across = planMove(columns, "b", { status: "in_progress", index: 0 })!;
    expect(across).toMatchObject({ status: "in_progress", statusChanged: true });
    expect(compareBytes(across.position, "a0")).toBeLessThan(0);
    expect(planMove(columns, "b", { status: "done", index: 0 })!.position).toBe(generateKeyBetween(null, null));
  });
});
