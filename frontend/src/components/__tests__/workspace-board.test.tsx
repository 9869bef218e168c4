// @vitest-environment jsdom
import { act, cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import { AuthSession } from "@/lib/api/session";
import type { UserPublic } from "@/lib/api/types";
import { flush, setup } from "@/lib/realtime/__tests__/harness";
import { openLivePage } from "./live-page";

/**
 * The board page when the hub refuses its subscription: refused access reads as "not
 * found" (the hub does not say whether the workspace exists), any other refusal as
 * itself — the board cannot be followed live — not as a missing workspace.
 */
const ME: UserPublic = { id: "u1", email: "a@example.com", display_name: "Ada", role: "member", is_active: true, email_verified: true, created_at: "x", last_login_at: null };

const CARD = {
  id: "r1",
  workspace_id: "w1",
  kind: "task",
  title: "Write the spec",
  body: "",
  status: "open",
  position: "a0",
  tags: [],
  data: {},
  version: 1,
  created_by: "u1",
  updated_by: "u1",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  deleted_at: null,
};
/** The role `GET /workspaces/w1` answers with, and the cards of the listing. */
let role = "owner";
/** `GET /workspaces/w1` fails (a 500) while set. */
let workspaceDown = false;
let cards: unknown[] = [];
const calls: string[] = [];
const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
  const key = `${init?.method ?? "GET"} ${String(url)}`;
  calls.push(key);
  if (key.startsWith("GET /api/v1/workspaces/w1/resources?deleted=true")) {
    return new Response(JSON.stringify({ items: [{ ...CARD, id: "r0", title: "Old idea", deleted_at: "2026-01-02T00:00:00Z" }], next_cursor: null }), { status: 200 });
  }
  if (key.startsWith("GET /api/v1/workspaces/w1/resources")) return new Response(JSON.stringify({ items: cards, next_cursor: null }), { status: 200 });
  if (key.startsWith("GET /api/v1/workspaces/w1/members")) return new Response(JSON.stringify({ items: [], next_cursor: null }), { status: 200 });
  if (key === "GET /api/v1/workspaces/w1" && workspaceDown) return new Response(JSON.stringify({ code: "internal", status: 500, message: "boom" }), { status: 500 });
  if (key === "GET /api/v1/workspaces/w1") {
    return new Response(JSON.stringify({ id: "w1", name: "Team", role, version: 1, created_by: "u1", created_at: "x", updated_at: "x" }), { status: 200 });
  }
  return new Response(JSON.stringify({ code: "not_found", status: 404, message: key }), { status: 404 });
});

let h = setup();
const session = new AuthSession({ locks: null, fetch: vi.fn(async () => new Response(null, { status: 401 })) as unknown as typeof fetch });
const api = new ApiClient({ fetch: fetchImpl as unknown as typeof fetch, tokens: { getToken: async () => "t" } });

vi.mock("@/lib/services", () => ({ getServices: () => ({ session, api, realtime: h.client }) }));
vi.mock("next/navigation", () => ({
  useSearchParams: () => new URLSearchParams("id=w1"),
  usePathname: () => "/workspace/",
  useRouter: () => ({ push: vi.fn(), replace: vi.fn() }),
}));

const { WorkspaceBoard } = await import("@/app/(app)/workspace/workspace-board");

beforeEach(() => {
  h = setup();
  calls.length = 0;
  role = "owner";
  workspaceDown = false;
  cards = [];
});
afterEach(cleanup);

/** Render the board and answer its subscribe: with `error`, or (without one) let it stand. */
async function refusedWith(error?: { code: string; message: string; status: number }) {
  return (await openLivePage(<WorkspaceBoard />, { session, h, user: ME, refusal: error })).socket;
}

/** What the board offers to change (by accessible name; "Move …" is the card's drag handle), and whether the card shows it can be picked up. */
function changeControls() {
  const names = ["New card", "New card in Open", "Add a card to Open", "Move Write the spec", "Edit Write the spec", "Delete Write the spec"];
  const shown = names.filter((name) => screen.queryByRole("button", { name }) !== null);
  return { shown, grab: screen.getByTestId("resource-card").className.includes("cursor-grab") };
}

describe("board page, subscription refused", () => {
  it("refused access is a workspace not found", async () => {
    await refusedWith({ code: "forbidden", message: "not a member of this workspace", status: 403 });
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Workspace not found"));
    expect(screen.getByText("It does not exist, or you are not a member of it.")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "New card" })).toBeNull();
  });

  it("the socket's subscription limit is said as itself, with a way to try again", async () => {
    await refusedWith({ code: "too_large", message: "this socket has 100 subscriptions, the most it may have", status: 413 });
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("This board cannot be followed live");
    expect(alert.textContent).toContain("This socket has 100 subscriptions, the most it may have.");
    expect(screen.getByRole("button", { name: "Try again" })).toBeTruthy();
    expect(screen.queryByText("Workspace not found")).toBeNull();
    expect(screen.queryByRole("button", { name: "New card" })).toBeNull();
  });
});

describe("board page, by role", () => {
  it("a viewer reads the cards but is offered no change: no New card, Add a card, move, Edit or Delete", async () => {
    role = "viewer";
    cards = [CARD];
    await refusedWith();
    await screen.findByText("Write the spec");
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Team"));
    expect(changeControls()).toEqual({ shown: [], grab: false });

    fireEvent.click(screen.getByRole("button", { name: "Trash" })); // reading the Trash is allowed, restoring is not
    await screen.findByText("Old idea");
    expect(screen.queryByRole("button", { name: "Restore Old idea" })).toBeNull();
  });

  it("a member is offered every change; demoted to viewer while the board is open, the offers go", async () => {
    role = "member";
    cards = [CARD];
    const socket = await refusedWith();
    await screen.findByText("Write the spec");
    await waitFor(() => expect(changeControls().shown).toHaveLength(6));
    expect(changeControls().grab).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Trash" }));
    expect(await screen.findByRole("button", { name: "Restore Old idea" })).toBeTruthy();
    fireEvent.keyDown(document.activeElement ?? document.body, { key: "Escape" });
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(changeControls().shown).toHaveLength(6);

    const demoted = { workspace_id: "w1", user_id: "u1", email: "a@example.com", display_name: "Ada", role: "viewer", joined_at: "x", updated_at: "x" };
    await act(async () => {
      socket.push({ push: "pub", channel: "workspace:w1", offset: 1, data: { id: "e1", type: "member.updated", channel: "workspace:w1", at: "x", data: demoted } });
      await flush();
    });
    await waitFor(() => expect(changeControls()).toEqual({ shown: [], grab: false }));
  });
});

/** The hub's `member.updated` event for this user (u1), now with `role`. */
function roleChanged(role: string, offset: number) {
  const data = { workspace_id: "w1", user_id: "u1", email: "a@example.com", display_name: "Ada", role, joined_at: "x", updated_at: "x" };
  return { push: "pub", channel: "workspace:w1", offset, data: { id: `e${offset}`, type: "member.updated", channel: "workspace:w1", at: "x", data } };
}

describe("board page, when the role changes or cannot be read", () => {
  it("a member whose role could not be read is told so, not left silently read-only; Retry reads it again", async () => {
    role = "member";
    workspaceDown = true;
    cards = [CARD];
    await refusedWith();
    await screen.findByText("Write the spec");
    const alert = await screen.findByText("Could not read your role in this workspace");
    expect(changeControls().shown).toEqual([]);

    workspaceDown = false;
    fireEvent.click(within(alert.closest("[role=alert]") as HTMLElement).getByRole("button", { name: "Retry" }));
    await waitFor(() => expect(changeControls().shown).toHaveLength(6));
    expect(screen.queryByText("Could not read your role in this workspace")).toBeNull();
  });

  it("demoted with the edit dialog open: it closes, says the edit was not saved, and a promotion back does not reopen it", async () => {
    role = "member";
    cards = [CARD];
    const socket = await refusedWith();
    await screen.findByText("Write the spec");
    await waitFor(() => expect(changeControls().shown).toHaveLength(6));
    fireEvent.click(screen.getByRole("button", { name: "Edit Write the spec" }));
    fireEvent.change(within(await screen.findByRole("dialog")).getByLabelText("Title"), { target: { value: "Mine" } });

    await act(async () => {
      socket.push(roleChanged("viewer", 1));
      await flush();
    });
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    // (the toast; Radix may repeat its text for a moment in its announcer)
    expect(await screen.findAllByText("Your role in this workspace changed")).not.toHaveLength(0);
    expect(screen.getAllByText(/the edit was not saved/)).not.toHaveLength(0);

    await act(async () => {
      socket.push(roleChanged("member", 2));
      await flush();
    });
    await waitFor(() => expect(changeControls().shown).toHaveLength(6));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(socket.framesOf("rpc")).toHaveLength(0);
  });

  it("demoted during a drag, or before pressing Undo on a move: nothing is changed", async () => {
    role = "member";
    cards = [CARD];
    const socket = await refusedWith();
    await screen.findByText("Write the spec");
    await waitFor(() => expect(changeControls().shown).toHaveLength(6));

    /** Pick the card up by keyboard and take it one column to the right, to `column` (the sensor listens from the next task on). */
    const pickUpAndStepRight = async (column: string) => {
      const handle = screen.getByRole("button", { name: "Move Write the spec" });
      handle.focus();
      fireEvent.keyDown(handle, { code: "Space" });
      await waitFor(() => {
        fireEvent.keyDown(document.activeElement ?? document.body, { code: "ArrowRight" });
        expect(document.body.textContent).toContain(`is in ${column}`);
      });
    };
    await pickUpAndStepRight("In progress");
    fireEvent.keyDown(document.activeElement ?? document.body, { code: "Space" });
    const update = await waitFor(() => socket.last("rpc"));
    expect(update).toMatchObject({ method: "resources.update", params: { status: "in_progress" } });
    await act(async () => {
      socket.reply(update.id!, { ...CARD, status: "in_progress", position: "a1", version: 2 });
      await flush();
    });
    const undo = await screen.findByRole("button", { name: "Undo" });

    await act(async () => {
      socket.push(roleChanged("viewer", 1));
      await flush();
    });
    await waitFor(() => expect(changeControls().shown).toEqual([]));
    fireEvent.click(undo);
    await act(async () => {
      await flush();
    });
    expect(socket.framesOf("rpc")).toHaveLength(1); // the Undo sent nothing

    await act(async () => {
      socket.push(roleChanged("member", 2));
      await flush();
    });
    await waitFor(() => expect(changeControls().shown).toHaveLength(6));
    await pickUpAndStepRight("Done");
    await act(async () => {
      socket.push(roleChanged("viewer", 3));
      await flush();
    });
    await waitFor(() => expect(changeControls().shown).toEqual([]));
    fireEvent.keyDown(document.activeElement ?? document.body, { code: "Space" });
    await act(async () => {
      await flush();
    });
    expect(socket.framesOf("rpc")).toHaveLength(1); // the drop sent nothing
    expect(document.body.textContent).toContain("Moving “Write the spec” was cancelled; it stays where it was.");
    expect(screen.getByTestId("resource-card").getAttribute("data-status")).toBe("in_progress");
  });
});

describe("board page, when the hub made a change but could not send its answer (too_large, details.applied)", () => {
  const APPLIED = { code: "too_large", status: 413, message: "the change was applied, but its answer is larger than the message bus carries", details: { applied: true } };

  it("quick add: no toast says it failed; one says it was created and why it does not show, and nothing is sent again", async () => {
    role = "member";
    const socket = await refusedWith();
    fireEvent.click(await screen.findByRole("button", { name: "Add a card to Open" }));
    const field = within(screen.getByTestId("quick-add")).getByRole("textbox");
    fireEvent.change(field, { target: { value: "Big one" } });
    fireEvent.submit(screen.getByTestId("quick-add"));
    const create = await waitFor(() => socket.last("rpc"));
    expect(create).toMatchObject({ method: "resources.create", params: { title: "Big one" } });
    await act(async () => {
      socket.fail(create.id!, APPLIED);
      await flush();
    });
    expect(await screen.findAllByText("“Big one” was created")).not.toHaveLength(0);
    // The card is over what NATS carries: its event is set aside and a read of it refused, so it cannot show.
    expect(screen.getAllByText(/too large for the server to send back, so it cannot be shown/)).not.toHaveLength(0);
    expect(screen.queryByText(/was not created/)).toBeNull();
    expect(screen.queryAllByTestId("resource-card").map((card) => card.textContent)).not.toContainEqual(expect.stringContaining("Big one"));
    expect(socket.framesOf("rpc")).toHaveLength(1);
  });

  it("restore from the Trash: the card is back on the board, and no toast says it was not restored", async () => {
    role = "member";
    const socket = await refusedWith();
    fireEvent.click(await screen.findByRole("button", { name: "Trash" }));
    fireEvent.click(await screen.findByRole("button", { name: "Restore Old idea" }));
    const restore = await waitFor(() => socket.last("rpc"));
    expect(restore).toMatchObject({ method: "resources.restore", params: { resource_id: "r0", expected_version: 1 } });
    await act(async () => {
      socket.fail(restore.id!, APPLIED);
      await flush();
    });
    fireEvent.keyDown(document.activeElement ?? document.body, { key: "Escape" });
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(await screen.findByText("Old idea")).toBeTruthy();
    expect(screen.queryByText(/was not restored/)).toBeNull();
    expect(socket.framesOf("rpc")).toHaveLength(1);
  });
});

describe("board page, presence", () => {
  /** The connection drops, the client reconnects and resubscribes to the board's channel: the new socket. */
  async function resubscribed(socket: Awaited<ReturnType<typeof h.accept>>) {
    socket.drop(1006);
    await h.untilRetry();
    const next = await h.accept();
    next.reply(next.last("subscribe").id as number, { channel: "workspace:w1", offset: 0, epoch: "e", recovered: true, publications: [] });
    await flush();
    return next;
  }

  it("the avatars say who was seen here, not who is, while the presence snapshot failed; a fresh one says who is here", async () => {
    cards = [CARD];
    let socket = await refusedWith();
    await screen.findByText("Write the spec");
    await act(async () => {
      socket.reply(socket.last("presence").id as number, { members: [{ user: "u1", client: "c1", joined_at: 1 }] });
      await flush();
    });
    await waitFor(() => expect(screen.getByTestId("presence").textContent).toContain("1 person here"));
    expect(screen.getByTestId("presence").dataset.stale).toBe("false");

    // The connection drops; the snapshot after the resubscription is refused (bad_request: not asked again).
    await act(async () => {
      socket = await resubscribed(socket);
      socket.fail(socket.last("presence").id as number, { code: "bad_request", status: 400 });
      await flush();
    });
    await waitFor(() => expect(screen.getByTestId("presence").dataset.stale).toBe("true"));
    expect(screen.getByTestId("presence").textContent).toContain("1 person seen here (may be out of date)");
    expect(screen.getByTestId("presence").textContent).not.toContain("1 person here");

    await act(async () => {
      socket = await resubscribed(socket);
      socket.reply(socket.last("presence").id as number, { members: [{ user: "u1", client: "c1", joined_at: 1 }, { user: "u2", client: "c2", joined_at: 1 }] });
      await flush();
    });
    await waitFor(() => expect(screen.getByTestId("presence").textContent).toContain("2 people here"));
    expect(screen.getByTestId("presence").dataset.stale).toBe("false");
  });
});

describe("board page, a card moved next to a card not sent yet", () => {
  it("dropped below an offline quick-added card, it goes below it on the hub too: the create says the place the draft shows", async () => {
    role = "member";
    cards = [CARD, { ...CARD, id: "r2", title: "Review it", position: "a1" }];
    await refusedWith();
    await screen.findByText("Review it");
    await act(async () => {
      h.env.emit("offline");
      await flush();
    });

    fireEvent.click(await screen.findByRole("button", { name: "Add a card to Open" }));
    fireEvent.change(within(screen.getByTestId("quick-add")).getByRole("textbox"), { target: { value: "Buy milk" } });
    fireEvent.submit(screen.getByTestId("quick-add"));
    await screen.findByText("Buy milk");

    // "Write the spec" (first) goes two places down: below "Review it" and the draft, last of Open.
    const handle = screen.getByRole("button", { name: "Move Write the spec" });
    handle.focus();
    fireEvent.keyDown(handle, { code: "Space" });
    await waitFor(() => {
      fireEvent.keyDown(document.activeElement ?? document.body, { code: "ArrowDown" });
      expect(document.body.textContent).toContain("position 2 of 3");
    });
    await waitFor(() => {
      fireEvent.keyDown(document.activeElement ?? document.body, { code: "ArrowDown" });
      expect(document.body.textContent).toContain("position 3 of 3");
    });
    fireEvent.keyDown(document.activeElement ?? document.body, { code: "Space" });
    await waitFor(() =>
      expect(screen.getAllByTestId("resource-card").map((card) => card.textContent)).toEqual([
        expect.stringContaining("Review it"),
        expect.stringContaining("Buy milk"),
        expect.stringContaining("Write the spec"),
      ]),
    );

    await act(async () => {
      h.env.emit("online");
      await flush();
    });
    const socket = await act(async () => h.accept());
    await act(async () => {
      socket.reply(socket.last("subscribe").id as number, { channel: "workspace:w1", offset: 0, epoch: "e", recovered: true, publications: [] });
      await flush();
    });
    const [create, update] = socket.framesOf("rpc");
    expect(create).toMatchObject({ method: "resources.create", params: { title: "Buy milk", status: "open" } });
    expect(update).toMatchObject({ method: "resources.update", params: { resource_id: "r1" } });
    const drafted = (create!.params as { position?: string }).position;
    const dropped = (update!.params as { position: string }).position;
    // The hub puts a create without a position after the column's last card when it gets there: after the
    // moved card, if its move is applied first (another actor). With the draft's own key it stays above it.
    expect(drafted).toBeDefined();
    expect(drafted! > "a1" && drafted! < dropped).toBe(true);
  });
});

describe("board page, a quick add sent again after it failed", () => {
  /** Quick-add `title` to Open. */
  async function quickAdd(title: string) {
    if (!screen.queryByTestId("quick-add")) fireEvent.click(await screen.findByRole("button", { name: "Add a card to Open" }));
    fireEvent.change(within(screen.getByTestId("quick-add")).getByRole("textbox"), { target: { value: title } });
    fireEvent.submit(screen.getByTestId("quick-add"));
  }
  /** The connection comes back: a new socket, the board's subscription recovered on it. */
  async function backOnline() {
    const socket = await act(async () => h.accept());
    await act(async () => {
      socket.reply(socket.last("subscribe").id as number, { channel: "workspace:w1", offset: 0, epoch: "e", recovered: true, publications: [] });
      await flush();
    });
    return socket;
  }

  it("added offline, lost with the connection, added again online (another card in the column meanwhile): the same key and request, place and all", async () => {
    role = "member";
    cards = [CARD];
    await refusedWith();
    await screen.findByText("Write the spec");
    await act(async () => {
      h.env.emit("offline");
      await flush();
    });
    await quickAdd("Buy milk");
    await screen.findByText("Buy milk");
    await act(async () => {
      h.env.emit("online");
      await flush();
    });
    const socket = await backOnline();
    const [first] = socket.framesOf("rpc");
    expect(first).toMatchObject({ method: "resources.create", params: { title: "Buy milk", position: expect.any(String) } });
    // The socket closes for good with the create on it, unanswered: it fails, and may have been made.
    await act(async () => {
      socket.drop(1000);
      await flush();
    });
    await waitFor(() => expect(screen.getAllByText("“Buy milk” was not created")).not.toHaveLength(0));
    await act(async () => {
      h.client.reconnect();
      await flush();
    });
    const socket2 = await backOnline();
    // Another card is put at the end of Open meanwhile: the column's end is elsewhere now.
    await act(async () => {
      socket2.push({ push: "pub", channel: "workspace:w1", offset: 1, data: { id: "e1", type: "resource.created", channel: "workspace:w1", at: "x", data: { ...CARD, id: "r2", title: "Review it", position: "a5" } } });
      await flush();
    });
    await screen.findByText("Review it");
    await quickAdd("Buy milk");
    await act(async () => {
      await flush();
    });
    const [again] = socket2.framesOf("rpc");
    expect(again).toMatchObject({ method: "resources.create" });
    expect(again!.idempotency_key).toBe(first!.idempotency_key);
    expect(again!.params).toEqual(first!.params);
  });

  it("added online and failed, added again offline: the same key and request, without a place, drawn at the column's end meanwhile", async () => {
    role = "member";
    cards = [CARD];
    const socket = await refusedWith();
    await screen.findByText("Write the spec");
    await quickAdd("Buy milk");
    const first = await waitFor(() => socket.last("rpc"));
    expect(first.params).toEqual({ workspace_id: "w1", kind: "task", title: "Buy milk", status: "open" });
    await act(async () => {
      socket.fail(first.id!, { code: "internal", status: 500, message: "boom" });
      await flush();
    });
    await waitFor(() => expect(screen.getAllByText("“Buy milk” was not created")).not.toHaveLength(0));

    await act(async () => {
      h.env.emit("offline");
      await flush();
    });
    await quickAdd("Buy milk");
    await waitFor(() =>
      expect(screen.getAllByTestId("resource-card").map((card) => card.textContent)).toEqual([
        expect.stringContaining("Write the spec"),
        expect.stringContaining("Buy milk"),
      ]),
    );
    await act(async () => {
      h.env.emit("online");
      await flush();
    });
    const socket2 = await backOnline();
    const [again] = socket2.framesOf("rpc");
    expect(again).toMatchObject({ method: "resources.create" });
    expect(again!.idempotency_key).toBe(first.idempotency_key);
    expect(again!.params).toEqual(first.params);
  });
});
