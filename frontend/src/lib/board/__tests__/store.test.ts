import { describe, expect, it, vi } from "vitest";
import { HubError } from "../../errors";
import type { Resource } from "../../api/resources";
import { applyDelete, applyEdit, changedFields, EditChain, restoreResource } from "../actions";
import {
  boardReducer,
  initialBoardState,
  matchesSearch,
  selectColumns,
  selectFacets,
  viewOf,
  type BoardAction,
  type BoardState,
} from "../store";

const WS = "11111111-1111-1111-1111-111111111111";

function res(id: string, version: number, extra: Partial<Resource> = {}): Resource {
  return {
    id,
    workspace_id: WS,
    kind: "task",
    title: `${id} v${version}`,
    body: "",
    status: "open",
    position: "a0",
    tags: [],
    data: {},
    version,
    created_by: "u1",
    updated_by: "u1",
    created_at: `2026-01-01T00:00:0${id.length % 10}Z`,
    updated_at: `2026-01-02T00:00:0${version % 10}Z`,
    deleted_at: null,
    ...extra,
  };
}

const run = (...actions: BoardAction[]) => actions.reduce(boardReducer, initialBoardState);
const ev = (type: string, data: Resource & { hard?: boolean }): BoardAction => ({ type: "event", event: { type, data } });

describe("board reducer: REST and events", () => {
  it("applies a loaded page, then created/updated events", () => {
    const s = run(
      { type: "loaded", items: [res("a", 1)], replace: true },
      ev("resource.created", res("b", 1)),
      ev("resource.updated", res("a", 2, { status: "done" })),
    );
    expect(Object.keys(s.items).sort()).toEqual(["a", "b"]);
    expect(s.items.a!.version).toBe(2);
    expect(s.items.a!.status).toBe("done");
  });

  it("ignores events and pages older than what it has (never goes backwards)", () => {
    const s = run(
      ev("resource.updated", res("a", 3, { title: "newest" })),
      ev("resource.updated", res("a", 2, { title: "older" })),
      { type: "loaded", items: [res("a", 1, { title: "stale page" })], replace: false },
      ev("resource.updated", res("a", 3, { title: "duplicate" })),
    );
    expect(s.items.a!.title).toBe("newest");
    expect(s.versions.a).toBe(3);
  });

  it("a replacing load drops what the page lacks, but not what is being edited", () => {
    const s = run(
      { type: "loaded", items: [res("a", 1), res("b", 1), res("c", 1)], replace: true },
      { type: "optimistic", id: "c", opId: "o1", patch: { title: "mine" }, baseVersion: 1 },
      { type: "loaded", items: [res("a", 2)], replace: true },
    );
    expect(Object.keys(s.items).sort()).toEqual(["a", "c"]);
    expect(s.items.a!.version).toBe(2);
  });

  it("a soft delete hides the card and a restore brings it back; a stale page cannot undo the delete", () => {
    let s = run(
      { type: "loaded", items: [res("a", 1)], replace: true },
      ev("resource.deleted", { ...res("a", 2, { deleted_at: "2026-01-03T00:00:00Z" }), hard: false }),
    );
    expect(s.items.a!.deleted_at).not.toBeNull();
    expect("hard" in s.items.a!).toBe(false);
    expect(selectColumns(s).flatMap((c) => c.items)).toEqual([]);
    s = boardReducer(s, { type: "loaded", items: [res("a", 1)], replace: true });
    expect(selectColumns(s).flatMap((c) => c.items)).toEqual([]);
    s = boardReducer(s, ev("resource.restored", res("a", 3)));
    expect(selectColumns(s).flatMap((c) => c.items.map((r) => r.id))).toEqual(["a"]);
  });

  it("a hard delete is final: later events and pages of that resource are ignored", () => {
    const s = run(
      { type: "loaded", items: [res("a", 1)], replace: true },
      { type: "optimistic", id: "a", opId: "o1", patch: { title: "x" }, baseVersion: 1 },
      ev("resource.deleted", { ...res("a", 2, { deleted_at: "2026-01-03T00:00:00Z" }), hard: true }),
      ev("resource.updated", res("a", 5)),
      { type: "loaded", items: [res("a", 1)], replace: false },
    );
    expect(s.items.a).toBeUndefined();
    expect(s.pending.a).toBeUndefined();
  });

  it("ignores events of other types", () => {
    const s = run({ type: "event", event: { type: "member.added", data: res("a", 1) } });
    expect(s).toBe(initialBoardState);
  });
});

describe("board reducer: optimistic edits", () => {
  const base = run({ type: "loaded", items: [res("a", 1)], replace: true });

  it("shows the edit at once and keeps the server's copy for a rollback", () => {
    const s = boardReducer(base, { type: "optimistic", id: "a", opId: "o1", patch: { status: "done" }, baseVersion: 1 });
    expect(viewOf(s, "a")!.status).toBe("done");
    expect(s.items.a!.status).toBe("open");
    expect(selectColumns(s).find((c) => c.status === "done")!.items.map((r) => r.id)).toEqual(["a"]);
    const back = boardReducer(s, { type: "rolledBack", id: "a", opId: "o1" });
    expect(viewOf(back, "a")!.status).toBe("open");
    expect(back.pending).toEqual({});
  });

  it("confirms with the server's resource; the echo event of the same version changes nothing", () => {
    let s = boardReducer(base, { type: "optimistic", id: "a", opId: "o1", patch: { status: "done" }, baseVersion: 1 });
    s = boardReducer(s, { type: "confirmed", id: "a", opId: "o1", resource: res("a", 2, { status: "done" }) });
    expect(s.pending).toEqual({});
    expect(viewOf(s, "a")!.status).toBe("done");
    expect(boardReducer(s, ev("resource.updated", res("a", 2, { status: "done" })))).toBe(s);
  });

  it("keeps the overlay while other people's events arrive, and ignores a late answer to a replaced edit", () => {
    let s = boardReducer(base, { type: "optimistic", id: "a", opId: "o1", patch: { title: "mine" }, baseVersion: 1 });
    s = boardReducer(s, ev("resource.updated", res("a", 2, { status: "in_progress" })));
    expect(viewOf(s, "a")).toMatchObject({ title: "mine", status: "in_progress" });
    s = boardReducer(s, { type: "optimistic", id: "a", opId: "o2", patch: { title: "again" }, baseVersion: 2 });
    s = boardReducer(s, { type: "rolledBack", id: "a", opId: "o1" });
    expect(viewOf(s, "a")!.title).toBe("again");
  });

  it("a conflict drops the overlay, shows the newer version and remembers what the user wanted", () => {
    let s = boardReducer(base, { type: "optimistic", id: "a", opId: "o1", patch: { title: "mine" }, baseVersion: 1 });
    s = boardReducer(s, { type: "conflicted", id: "a", opId: "o1", current: res("a", 3, { title: "theirs" }) });
    expect(viewOf(s, "a")).toMatchObject({ title: "theirs", version: 3 });
    expect(s.conflicts.a).toEqual({ patch: { title: "mine" }, baseVersion: 1 });
    // retrying clears the conflict
    s = boardReducer(s, { type: "optimistic", id: "a", opId: "o2", patch: { title: "mine" }, baseVersion: 3 });
    expect(s.conflicts).toEqual({});
    s = boardReducer(s, { type: "conflictResolved", id: "a" });
    expect(s.pending.a).toBeDefined();
  });
});

describe("applyEdit", () => {
  function deps(update: () => Promise<Resource>, get: () => Promise<Resource> = async () => res("a", 9)) {
    let state: BoardState = run({ type: "loaded", items: [res("a", 1)], replace: true });
    const seen: string[] = [];
    const api = { update: vi.fn(update), get: vi.fn(get) };
    const dispatch = (action: BoardAction) => {
      seen.push(action.type);
      state = boardReducer(state, action);
    };
    return { api, dispatch, workspaceId: WS, newOpId: () => "op", seen, state: () => state };
  }

  it("saves: optimistic, then confirmed at the new version; If-Match is the base version", async () => {
    const d = deps(async () => res("a", 2, { status: "done" }));
    const outcome = await applyEdit(d, "a", { status: "done" }, 1);
    expect(outcome.kind).toBe("saved");
    expect(d.api.update).toHaveBeenCalledWith(WS, "a", 1, { status: "done" });
    expect(d.seen).toEqual(["optimistic", "confirmed"]);
    expect(d.state().items.a!.version).toBe(2);
  });

  it("on 412 fetches the newer version and records a conflict", async () => {
    const stale = new HubError({ code: "precondition_failed", message: "stale", status: 412 });
    const d = deps(
      async () => Promise.reject(stale),
      async () => res("a", 4, { title: "theirs" }),
    );
    const outcome = await applyEdit(d, "a", { title: "mine" }, 1);
    expect(outcome).toMatchObject({ kind: "conflict", current: { version: 4 } });
    expect(d.api.get).toHaveBeenCalledWith(WS, "a", { includeDeleted: true });
    expect(d.seen).toEqual(["optimistic", "conflicted"]);
    expect(viewOf(d.state(), "a")!.title).toBe("theirs");
    expect(d.state().conflicts.a!.patch).toEqual({ title: "mine" });
  });

  it("treats an RPC 409 stale_version as a conflict too", async () => {
    const stale = new HubError({ code: "conflict", message: "stale", status: 409, details: { reason: "stale_version" } });
    const d = deps(async () => Promise.reject(stale));
    expect((await applyEdit(d, "a", { title: "mine" }, 1)).kind).toBe("conflict");
  });

  it("rolls back on any other error", async () => {
    const error = new HubError({ code: "validation_failed", message: "bad", status: 422 });
    const d = deps(async () => Promise.reject(error));
    const outcome = await applyEdit(d, "a", { title: "" }, 1);
    expect(outcome).toEqual({ kind: "failed", error });
    expect(d.seen).toEqual(["optimistic", "rolledBack"]);
    expect(viewOf(d.state(), "a")!.title).toBe("a v1");
  });
});

describe("edits made before the last one was answered (offline)", () => {
  function later<T>() {
    let resolve!: (value: T) => void;
    const promise = new Promise<T>((r) => (resolve = r));
    return { promise, resolve };
  }

  it("two moves of one card: both show at once; the second goes after the first, at the version the first made", async () => {
    let state: BoardState = run({ type: "loaded", items: [res("a", 1)], replace: true });
    const dispatch = (action: BoardAction) => (state = boardReducer(state, action));
    const replies = [later<Resource>(), later<Resource>()];
    const update = vi.fn((_ws: string, _id: string, _version: number, _patch: unknown) => replies[update.mock.calls.length - 1]!.promise);
    const deps = { api: { update, get: vi.fn() }, dispatch, workspaceId: WS, chain: new EditChain() };

    const first = applyEdit(deps, "a", { status: "in_progress" }, 1);
    const second = applyEdit(deps, "a", { title: "renamed" }, 1);
    expect(viewOf(state, "a")).toMatchObject({ status: "in_progress", title: "renamed" });
    await Promise.resolve();
    expect(update).toHaveBeenCalledTimes(1); // the second waits for the first

    replies[0]!.resolve(res("a", 2, { status: "in_progress" }));
    await first;
    await new Promise((r) => setTimeout(r, 0));
    expect(update).toHaveBeenLastCalledWith(WS, "a", 2, { title: "renamed" });
    expect(viewOf(state, "a")).toMatchObject({ status: "in_progress", title: "renamed" }); // still pending on top of v2
    replies[1]!.resolve(res("a", 3, { status: "in_progress", title: "renamed" }));
    expect((await second).kind).toBe("saved");
    expect(state.pending).toEqual({});
    expect(viewOf(state, "a")).toMatchObject({ version: 3, status: "in_progress", title: "renamed" });
  });

  it("a delete leaves the board at once and keeps the deleted copy at the next version; refused, the card comes back", async () => {
    let state: BoardState = run({ type: "loaded", items: [res("a", 1)], replace: true });
    const dispatch = (action: BoardAction) => (state = boardReducer(state, action));
    const gone = await applyDelete({ api: { delete: vi.fn(async () => {}), update: vi.fn(), get: vi.fn() }, dispatch, workspaceId: WS }, res("a", 1));
    expect(gone).toMatchObject({ kind: "deleted", resource: { version: 2 } });
    expect(selectColumns(state).flatMap((c) => c.items)).toEqual([]);
    expect(state.items.a!.deleted_at).toBeTruthy();

    state = run({ type: "loaded", items: [res("b", 1)], replace: true });
    const refused = new HubError({ code: "forbidden", message: "no", status: 403 });
    const outcome = await applyDelete({ api: { delete: vi.fn(async () => Promise.reject(refused)), update: vi.fn(), get: vi.fn() }, dispatch, workspaceId: WS }, res("b", 1));
    expect(outcome.kind).toBe("failed");
    expect(selectColumns(state).flatMap((c) => c.items.map((r) => r.id))).toEqual(["b"]);
  });

  it("a draft (created offline) shows as a pending card until the server's resource replaces it", () => {
    let state = run({ type: "draftAdded", draft: res("key-1", 0, { title: "Draft" }) });
    expect(selectColumns(state)[0]!.items.map((r) => r.title)).toEqual(["Draft"]);
    state = boardReducer(state, { type: "draftSettled", draftId: "key-1", resource: res("real", 1, { title: "Draft" }) });
    expect(selectColumns(state)[0]!.items.map((r) => r.id)).toEqual(["real"]);
    expect(state.drafts).toEqual({});
  });
});

describe("a change the hub made but could not answer (too_large with details.applied)", () => {
  const APPLIED = HubError.fromFrame({
    code: "too_large",
    status: 413,
    message: "the change was applied, but its answer is larger than the message bus carries",
    details: { applied: true },
  });

  it("an edit is saved, not rolled back nor sent again: the card shows it at the version it made, not as pending", async () => {
    let state: BoardState = run({ type: "loaded", items: [res("a", 1)], replace: true });
    const seen: string[] = [];
    const dispatch = (action: BoardAction) => {
      seen.push(action.type);
      state = boardReducer(state, action);
    };
    const update = vi.fn(async () => Promise.reject(APPLIED));
    const outcome = await applyEdit({ api: { update, get: vi.fn() }, dispatch, workspaceId: WS }, "a", { status: "done" }, 1);
    expect(outcome).toEqual({ kind: "applied", version: 2 });
    expect(update).toHaveBeenCalledTimes(1);
    expect(seen).toEqual(["optimistic", "applied"]);
    expect(state.pending).toEqual({});
    expect(viewOf(state, "a")).toMatchObject({ status: "done", version: 2 });
  });

  it("a server's copy at that version (once an operator let it through) replaces ours; an older one (a listing read before) does not undo the change", () => {
    let s = run({ type: "loaded", items: [res("a", 1)], replace: true }, { type: "optimistic", id: "a", opId: "o1", patch: { title: "mine" }, baseVersion: 1 });
    s = boardReducer(s, { type: "applied", id: "a", opId: "o1", patch: { title: "mine" }, version: 2 });
    s = boardReducer(s, { type: "loaded", items: [res("a", 1)], replace: true });
    expect(viewOf(s, "a")).toMatchObject({ title: "mine", version: 2 });
    s = boardReducer(s, ev("resource.updated", res("a", 2, { title: "mine", updated_at: "2026-01-03T00:00:00Z" })));
    expect(viewOf(s, "a")).toMatchObject({ title: "mine", version: 2, updated_at: "2026-01-03T00:00:00Z" });
    s = boardReducer(s, ev("resource.updated", res("a", 3, { title: "theirs" })));
    expect(viewOf(s, "a")).toMatchObject({ title: "theirs", version: 3 });
  });

  it("laid over the card when the listing brings it (the board lays its cached listing over its own state)", () => {
    let s = boardReducer(initialBoardState, { type: "applied", id: "a", opId: "o1", patch: { status: "done" }, version: 2 });
    s = boardReducer(s, { type: "loaded", items: [res("a", 1)], replace: true });
    expect(viewOf(s, "a")).toMatchObject({ status: "done", version: 2 });
    expect(selectColumns(s).find((c) => c.status === "done")!.items.map((r) => r.id)).toEqual(["a"]);
  });

  it("each such edit is laid over only the copies older than the version it made: an earlier one never undoes a later change", async () => {
    // v1; ours A (title, body) made v2 unanswered; ours B (title) answered at v3; ours C (body) made v4 unanswered.
    let state: BoardState = run({ type: "loaded", items: [res("a", 1)], replace: true });
    const dispatch = (action: BoardAction) => (state = boardReducer(state, action));
    const update = vi.fn(async (_ws: string, _id: string, version: number) =>
      version === 2 ? res("a", 3, { title: "t2", body: "big" }) : Promise.reject(APPLIED),
    );
    const deps = { api: { update, get: vi.fn() }, dispatch, workspaceId: WS, chain: new EditChain() };
    expect((await applyEdit(deps, "a", { title: "t1", body: "big" }, 1)).kind).toBe("applied");
    expect((await applyEdit(deps, "a", { title: "t2" }, 2)).kind).toBe("saved");
    expect((await applyEdit(deps, "a", { body: "bigger" }, 3)).kind).toBe("applied");
    expect(viewOf(state, "a")).toMatchObject({ title: "t2", body: "bigger", version: 4 });
    // A listing with B's copy: C laid over it, not A.
    state = boardReducer(state, { type: "loaded", items: [res("a", 3, { title: "t2", body: "big" })], replace: true });
    expect(viewOf(state, "a")).toMatchObject({ title: "t2", body: "bigger", version: 4 });
    // A board that saw none of it, given the first copy: A, then C, over it.
    const fresh = run({ type: "applied", id: "a", opId: "o1", patch: { title: "t1", body: "big" }, version: 2 }, { type: "applied", id: "a", opId: "o3", patch: { body: "bigger" }, version: 4 });
    expect(viewOf(boardReducer(fresh, { type: "loaded", items: [res("a", 1)], replace: true }), "a")).toMatchObject({ title: "t1", body: "bigger", version: 4 });
    expect(viewOf(boardReducer(fresh, { type: "loaded", items: [res("a", 3, { title: "t2" })], replace: true }), "a")).toMatchObject({ title: "t2", body: "bigger", version: 4 });
  });

  it("someone else's change between two of ours stays: only our later edit is laid over it", () => {
    let s = run({ type: "loaded", items: [res("a", 1)], replace: true });
    s = boardReducer(s, { type: "applied", id: "a", opId: "o1", patch: { title: "mine" }, version: 2 });
    s = boardReducer(s, ev("resource.updated", res("a", 3, { title: "theirs" })));
    s = boardReducer(s, { type: "applied", id: "a", opId: "o2", patch: { status: "done" }, version: 4 });
    expect(viewOf(s, "a")).toMatchObject({ title: "theirs", status: "done", version: 4 });
    s = boardReducer(s, { type: "loaded", items: [res("a", 3, { title: "theirs" })], replace: true });
    expect(viewOf(s, "a")).toMatchObject({ title: "theirs", status: "done", version: 4 });
  });

  it("an edit made on top of it goes at the version it made", async () => {
    let state: BoardState = run({ type: "loaded", items: [res("a", 1)], replace: true });
    const dispatch = (action: BoardAction) => (state = boardReducer(state, action));
    const update = vi.fn(async (_ws: string, _id: string, version: number) => (version === 1 ? Promise.reject(APPLIED) : res("a", 3, { status: "done", title: "renamed" })));
    const deps = { api: { update, get: vi.fn() }, dispatch, workspaceId: WS, chain: new EditChain() };
    const first = applyEdit(deps, "a", { status: "done" }, 1);
    const second = applyEdit(deps, "a", { title: "renamed" }, 1);
    expect((await first).kind).toBe("applied");
    expect((await second).kind).toBe("saved");
    expect(update).toHaveBeenLastCalledWith(WS, "a", 2, { title: "renamed" });
    expect(viewOf(state, "a")).toMatchObject({ status: "done", title: "renamed", version: 3 });
  });

  it("a restore is done: the copy we had, one version on, not deleted", async () => {
    const restore = vi.fn(async () => Promise.reject(APPLIED));
    const deleted = res("a", 2, { deleted_at: "2026-01-02T00:00:00Z" });
    expect(await restoreResource({ restore }, WS, deleted)).toEqual({ ...deleted, version: 3, deleted_at: null });
    expect(restore).toHaveBeenCalledTimes(1);
    const refused = new HubError({ code: "forbidden", message: "no", status: 403 });
    await expect(restoreResource({ restore: vi.fn(async () => Promise.reject(refused)) }, WS, deleted)).rejects.toBe(refused);
  });
});

describe("selectors", () => {
  it("columns: open, in progress, done, then other statuses; sorted as asked; filtered", () => {
    const s = run({
      type: "loaded",
      replace: true,
      items: [
        res("a", 1, { title: "Banana", status: "blocked", tags: ["x"] }),
        res("bb", 1, { title: "apple", kind: "bug" }),
        res("ccc", 1, { title: "Cherry", tags: ["x", "y"] }),
      ],
    });
    const columns = selectColumns(s, { sort: "title", order: "asc" });
    expect(columns.map((c) => c.status)).toEqual(["open", "in_progress", "done", "blocked"]);
    expect(columns[0]!.items.map((r) => r.title)).toEqual(["apple", "Cherry"]);
    expect(selectColumns(s, { sort: "created_at", order: "desc" })[0]!.items.map((r) => r.id)).toEqual(["ccc", "bb"]);
    expect(selectColumns(s, { tag: "x" }).flatMap((c) => c.items.map((r) => r.id)).sort()).toEqual(["a", "ccc"]);
    expect(selectColumns(s, { kind: "bug" }).flatMap((c) => c.items.map((r) => r.id))).toEqual(["bb"]);
    expect(selectColumns(s, { status: "blocked" }).map((c) => c.status)).toEqual(["blocked"]);
    expect(selectFacets(s)).toEqual({ kinds: ["bug", "task"], tags: ["x", "y"], statuses: ["open", "in_progress", "done", "blocked"] });
    // A filtered reload drops resources, not the menus' choices.
    const filtered = boardReducer(s, { type: "loaded", items: [res("bb", 1, { title: "apple", kind: "bug" })], replace: true });
    expect(Object.keys(filtered.items)).toEqual(["bb"]);
    expect(selectFacets(filtered).kinds).toEqual(["bug", "task"]);
  });

  it("matches live additions to a search loosely (prefixes, ignoring or/-not)", () => {
    expect(matchesSearch({ title: "Running late", body: "" }, "run")).toBe(true);
    expect(matchesSearch({ title: "Walk", body: "the dog" }, "dog or cat -fish")).toBe(true);
    expect(matchesSearch({ title: "Walk", body: "" }, "cat")).toBe(false);
  });

  it("changedFields keeps only what still differs", () => {
    expect(changedFields(res("a", 1, { status: "done" }), { status: "done", title: "new", tags: [] })).toEqual({ title: "new" });
  });
});

describe("the board's order", () => {
  it("a column in board order reads by position then id (byte order), local moves applied", () => {
    const s = run({
      type: "loaded",
      replace: true,
      items: [res("a", 1, { position: "a1" }), res("b", 1, { position: "Zz" }), res("c", 1, { position: "a1" }), res("d", 1, { position: "a0V" })],
    });
    const order = (state: BoardState) => selectColumns(state, { sort: "position", order: "asc" })[0]!.items.map((r) => r.id);
    expect(order(s)).toEqual(["b", "d", "a", "c"]);
    // A move shows at once: the overlay carries the new key.
    const moved = boardReducer(s, { type: "optimistic", id: "b", opId: "o1", patch: { position: "a2" }, baseVersion: 1 });
    expect(order(moved)).toEqual(["d", "a", "c", "b"]);
    // Someone else's move arrives as an event with the new key.
    const live = boardReducer(s, ev("resource.updated", res("c", 2, { position: "Zy" })));
    expect(order(live)).toEqual(["c", "b", "d", "a"]);
  });

  it("a draft without a key goes after its column's last card (where the hub will put it)", () => {
    const s = run(
      { type: "loaded", replace: true, items: [res("a", 1, { position: "a5" }), res("b", 1, { position: "a9", status: "done" })] },
      { type: "draftAdded", draft: res("key-1", 0, { position: "", title: "New" }) },
      { type: "draftAdded", draft: res("key-2", 0, { position: "", title: "Newer" }) },
    );
    expect(selectColumns(s, { sort: "position", order: "asc" })[0]!.items.map((r) => r.title)).toEqual(["a v1", "New", "Newer"]);
    expect(s.drafts["key-1"]!.position > "a5").toBe(true);
  });
});
