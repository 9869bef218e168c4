// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BoardToolbar, DEFAULT_QUERY, type BoardQuery } from "../board-toolbar";

/** As the board wires it: the query in the page's state, and the empty state's Clear filters = back to DEFAULT_QUERY. */
function Page({ seen }: { seen: (q: BoardQuery) => void }) {
  const [query, setQuery] = useState<BoardQuery>(DEFAULT_QUERY);
  seen(query);
  return (
    <>
      <BoardToolbar query={query} onChange={setQuery} facets={{ statuses: ["open"], kinds: ["task"], tags: [] }} />
      <button onClick={() => setQuery(DEFAULT_QUERY)}>Clear filters</button>
    </>
  );
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe("BoardToolbar search", () => {
  let query: BoardQuery = DEFAULT_QUERY;
  const box = () => screen.getByLabelText("Search") as HTMLInputElement;
  const after = (ms: number) => act(async () => void vi.advanceTimersByTime(ms));

  it("goes into the query 300 ms after the last keystroke", async () => {
    render(<Page seen={(q) => (query = q)} />);
    fireEvent.change(box(), { target: { value: "spe" } });
    await after(200);
    fireEvent.change(box(), { target: { value: "spec" } });
    await after(299);
    expect(query.q).toBe("");
    await after(1);
    expect(query.q).toBe("spec");
    expect(box().value).toBe("spec");
  });

  it("Clear filters empties the box, and the old search does not come back", async () => {
    render(<Page seen={(q) => (query = q)} />);
    fireEvent.change(box(), { target: { value: "nothing-matches" } });
    await after(300);
    expect(query.q).toBe("nothing-matches");

    fireEvent.click(screen.getByText("Clear filters"));
    expect(box().value).toBe("");
    await after(1_000);
    expect(query.q).toBe("");
    expect(box().value).toBe("");

    fireEvent.change(box(), { target: { value: "again" } }); // and it still searches afterwards
    await after(300);
    expect(query.q).toBe("again");
  });
});
