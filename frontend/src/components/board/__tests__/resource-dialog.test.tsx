// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { useReducer, useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import type { Resource } from "@/lib/api/resources";
import { boardReducer, initialBoardState, positionAtColumnEnd, selectColumns, viewOf } from "@/lib/board/store";
import { HubError } from "@/lib/errors";

/** The realtime client's RPC side, scripted: each call takes the next answer (a result, or an error frame). */
type Call = { method: string; params: Record<string, unknown>; key: string | undefined };
const calls: Call[] = [];
let answers: Array<{ result: unknown } | { error: unknown }> = [];
let connection = "live";
function answer(method: string, params: unknown, options: { idempotencyKey?: string } = {}): Promise<unknown> {
  calls.push({ method, params: params as Record<string, unknown>, key: options.idempotencyKey });
  const next = answers.shift();
  if (!next) return new Promise(() => {}); // queued: no answer yet (offline)
  return "result" in next ? Promise.resolve(next.result) : Promise.reject(HubError.fromFrame(next.error));
}
/** Like the realtime client, a mutation whose frame is over 64 KiB is refused before it is sent. */
const FRAME_LIMIT = 65_536;
const frameBytes = (method: string, params: unknown, key: string) =>
  new TextEncoder().encode(JSON.stringify({ op: "rpc", method, params, idempotency_key: key })).length;
function scriptedMutate(method: string, params: unknown, options?: { idempotencyKey?: string }): Promise<unknown> {
  const key = options?.idempotencyKey ?? `key-${calls.length}`;
  const bytes = frameBytes(method, params, key);
  if (bytes > FRAME_LIMIT) return Promise.reject(HubError.local("too_large", `The frame is ${bytes} bytes`, { idempotency_key: key }));
  return answer(method, params, { idempotencyKey: key });
}
const realtime = {
  rpc: vi.fn((method: string, params: unknown) => answer(method, params)),
  mutate: vi.fn(scriptedMutate),
  fitsFrame: (method: string, params: unknown, key = "k") => frameBytes(method, params, key) <= FRAME_LIMIT,
  get state() {
    return connection;
  },
};
/** The REST side (changes too large for a frame go there): each request takes the next answer. */
const requests: { method: string; url: string; headers: Headers; body: Record<string, unknown> }[] = [];
let restAnswers: Array<[number, unknown]> = [];
const fetch = vi.fn(async (input: string | URL | Request, init?: RequestInit) => {
  const request = input instanceof Request ? input : new Request(new URL(String(input), "http://hub.test"), init);
  requests.push({ method: request.method, url: new URL(request.url).pathname, headers: request.headers, body: (await request.clone().json()) as Record<string, unknown> });
  const [status, body] = restAnswers.shift() ?? [503, { status: 503, code: "unavailable" }];
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
});
const api = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, tokens: { getToken: async () => "tok" } });
vi.mock("@/lib/services", () => ({ getServices: () => ({ api, realtime }) }));

const { ResourceDialog } = await import("../resource-form-dialog");
const { useEditor } = await import("../use-live-resources");
const { ToastProvider } = await import("../../toaster");

afterEach(() => {
  cleanup();
  calls.length = 0;
  answers = [];
  requests.length = 0;
  restAnswers = [];
  connection = "live";
  realtime.mutate.mockImplementation(scriptedMutate);
});

const WS = "w1";
const R: Resource = {
  id: "r1",
  workspace_id: WS,
  kind: "task",
  title: "Original",
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

const invalid = (...errors: Array<{ loc: (string | number)[]; msg: string }>) => ({
  error: { code: "validation_failed", status: 422, message: "invalid", details: { errors: errors.map((e) => ({ ...e, type: "value_error" })) } },
});

function Harness({ mode, card = R }: { mode: "create" | "edit"; card?: Resource }) {
  const [state, dispatch] = useReducer(boardReducer, boardReducer(initialBoardState, { type: "upsert", resource: card }));
  const [open, setOpen] = useState(true);
  const editor = useEditor(WS, dispatch);
  const view = viewOf(state, "r1");
  return (
    <>
      <p data-testid="shown">{view ? `${view.title} v${view.version}` : "none"}</p>
      <p data-testid="cards">{selectColumns(state).flatMap((c) => c.items.map((r) => r.title)).join(", ")}</p>
      <p data-testid="open">{String(open)}</p>
      {mode === "create" ? (
        <ResourceDialog
          mode="create"
          open={open}
          onOpenChange={setOpen}
          workspaceId={WS}
          dispatch={dispatch}
          draftPosition={(status) => positionAtColumnEnd(state, status)}
        />
      ) : (
        <ResourceDialog mode="edit" open={open} onOpenChange={setOpen} workspaceId={WS} dispatch={dispatch} resource={state.items.r1!} editor={editor} />
      )}
    </>
  );
}

function renderDialog(mode: "create" | "edit", card?: Resource) {
  render(
    <ToastProvider>
      <Harness mode={mode} card={card} />
    </ToastProvider>,
  );
  return screen.getByRole("dialog");
}

async function submit(dialog: HTMLElement, name: RegExp) {
  await act(async () => {
    fireEvent.click(within(dialog).getByRole("button", { name }));
  });
}

/** Creates a card titled `title` while offline: the dialog closes and the card's draft shows at once. */
async function createOffline(title: string) {
  connection = "offline";
  const dialog = renderDialog("create");
  fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: title } });
  await submit(dialog, /^Create$/);
  await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
  expect(screen.getByTestId("cards").textContent).toContain(title);
}

describe("ResourceDialog", () => {
  it("create: one resources.create RPC with an idempotency key; the hub's 422 goes on the named fields (tags.N → Tags)", async () => {
    answers = [invalid({ loc: ["title"], msg: "title must not be blank" }, { loc: ["tags", 1], msg: "bad tag" })];
    const dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Hello" } });
    fireEvent.change(within(dialog).getByLabelText("Tags"), { target: { value: "a, b" } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(within(dialog).getByText("Title must not be blank.")).toBeTruthy());
    expect(within(dialog).getByLabelText("Title").getAttribute("aria-invalid")).toBe("true");
    expect(within(dialog).getByText("Bad tag.")).toBeTruthy();
    expect(within(dialog).getByLabelText("Tags").getAttribute("aria-invalid")).toBe("true");
    expect(calls[0]!.method).toBe("resources.create");
    expect(calls[0]!.key).toBeTruthy();
    expect(calls[0]!.params).toEqual({ workspace_id: WS, title: "Hello", kind: "task", status: "open", tags: ["a", "b"], body: "" });
    expect(screen.getByTestId("open").textContent).toBe("true");
  });

  it("create while offline: the dialog closes, the card shows at once, and the server's resource replaces it when the call is answered", async () => {
    await createOffline("Written offline");
    expect(calls).toHaveLength(1); // in the outbox, unanswered
  });

  it("create while offline: the create says the place its draft is shown at (after the column's last card), so cards moved next to it keep their side", async () => {
    await createOffline("Written offline");
    expect(calls[0]!.params).toMatchObject({ title: "Written offline", status: "open", position: "a1" });
  });

  it("create failed online (the reply lost), saved again offline: the same key and the same request, without a place; its draft shows", async () => {
    answers = [{ error: { code: "unavailable", status: 503, message: "Realtime connection halted: closed" } }];
    const dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Hello" } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(calls).toHaveLength(1));
    expect(screen.getByTestId("open").textContent).toBe("true");
    connection = "offline";
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(calls).toHaveLength(2));
    // The first may have been made: the hub replays it for this key and request, and refuses another request (422).
    expect(calls[1]!.key).toBe(calls[0]!.key);
    expect(calls[1]!.params).toEqual(calls[0]!.params);
    expect(calls[1]!.params).not.toHaveProperty("position");
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(screen.getByTestId("cards").textContent).toContain("Hello");
  });

  it("create refused online for a field, corrected and saved offline: the corrected request goes, with its draft's place", async () => {
    answers = [invalid({ loc: ["title"], msg: "title taken" })];
    const dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Hello" } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(within(dialog).getByText("Title taken.")).toBeTruthy());
    connection = "offline";
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Hello again" } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(calls).toHaveLength(2));
    expect(calls[1]!.params).toMatchObject({ title: "Hello again", position: "a1" });
  });

  it("create: Zod refuses a blank title before any request", async () => {
    const dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "   " } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(within(dialog).getByText("Enter a title")).toBeTruthy());
    expect(calls).toHaveLength(0);
  });

  it("edit a card whose stored title predates the one-line rule: its status alone is sent (the title unchanged is left out); a new title is still checked", async () => {
    const old = { ...R, title: "Fix\u200bit" };
    answers = [{ result: { ...old, status: "done", version: 2 } }];
    let dialog = renderDialog("edit", old);
    fireEvent.change(within(dialog).getByLabelText("Column"), { target: { value: "done" } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(calls).toEqual([expect.objectContaining({ method: "resources.update", params: { workspace_id: WS, resource_id: "r1", expected_version: 1, status: "done" } })]);
    cleanup();

    dialog = renderDialog("edit", old);
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Fix\u200bit now" } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(within(dialog).getByText(/without control or invisible formatting characters \(U\+200B\)/)).toBeTruthy());
    expect(calls).toHaveLength(1);
  });

  it("create: Column and Type are selects in words (no in_progress on screen)", () => {
    const dialog = renderDialog("create");
    const column = within(dialog).getByLabelText("Column") as HTMLSelectElement;
    expect([...column.options].map((o) => o.text)).toEqual(["Open", "In progress", "Done"]);
    expect([...(within(dialog).getByLabelText("Type") as HTMLSelectElement).options].map((o) => o.text)).toEqual(["Task", "Bug", "Idea", "Note"]);
  });

  it("edit: a stale version shows the newer one; saving again overwrites it with expected_version of that version", async () => {
    answers = [
      { error: { code: "conflict", status: 409, message: "stale version", details: { reason: "stale_version" } } },
      { result: { ...R, title: "Theirs", version: 2 } },
      { result: { ...R, title: "Mine", version: 3 } },
    ];
    const dialog = renderDialog("edit");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Mine" } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(within(dialog).getByTestId("conflict")).toBeTruthy());
    expect(within(dialog).getByTestId("conflict-current-title").textContent).toBe("“Theirs”");
    expect(screen.getByTestId("shown").textContent).toBe("Theirs v2");
    expect((within(dialog).getByLabelText("Title") as HTMLInputElement).value).toBe("Mine");
    expect(calls[0]).toMatchObject({ method: "resources.update", params: { expected_version: 1, title: "Mine" } });
    expect(calls[1]).toMatchObject({ method: "resources.get", params: { resource_id: "r1", include_deleted: true } });

    await submit(dialog, /Overwrite with mine/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(calls[2]!.params).toEqual({ workspace_id: WS, resource_id: "r1", expected_version: 2, title: "Mine" });
    expect(screen.getByTestId("shown").textContent).toBe("Mine v3");
  });

  it("a description the form takes but a socket frame cannot hold (70,000 characters) is saved over REST, create and edit", async () => {
    const long = "x".repeat(70_000);
    restAnswers = [[201, { ...R, id: "r2", title: "Spec", body: long }]];
    let dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Spec" } });
    fireEvent.change(within(dialog).getByLabelText("Description"), { target: { value: long } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(screen.getByTestId("cards").textContent).toContain("Spec");
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ method: "POST", url: "/api/v1/workspaces/w1/resources", body: { title: "Spec", body: long } });
    const createKey = realtime.mutate.mock.calls.at(-1)![2]!.idempotencyKey; // the form's key, given to the refused RPC
    expect(createKey).toBeTruthy();
    expect(requests[0]!.headers.get("Idempotency-Key")).toBe(createKey);
    expect(calls).toHaveLength(0); // nothing went over the socket
    cleanup();

    restAnswers = [[200, { ...R, body: long, version: 2 }]];
    dialog = renderDialog("edit");
    fireEvent.change(within(dialog).getByLabelText("Description"), { target: { value: long } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(screen.getByTestId("shown").textContent).toBe("Original v2");
    expect(requests[1]).toMatchObject({ method: "PATCH", url: "/api/v1/workspaces/w1/resources/r1", body: { body: long } });
    expect(requests[1]!.headers.get("If-Match")).toBe('"1"');
    expect(screen.queryByText("The change was not saved")).toBeNull();
  });

  it("offline, a change too large for a frame (which cannot wait in the outbox) keeps the dialog open with the text and says it can be saved once online", async () => {
    connection = "offline";
    const long = "x".repeat(70_000);
    fetch.mockImplementationOnce(async () => {
      throw new TypeError("Failed to fetch");
    });
    let dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Spec" } });
    fireEvent.change(within(dialog).getByLabelText("Description"), { target: { value: long } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(within(dialog).getByText(/can be saved once you are online/)).toBeTruthy());
    expect(screen.getByTestId("open").textContent).toBe("true");
    expect((within(dialog).getByLabelText("Description") as HTMLTextAreaElement).value).toBe(long);
    expect(screen.getByTestId("cards").textContent).not.toContain("Spec"); // no draft shown as if it were queued
    cleanup();

    fetch.mockImplementationOnce(async () => {
      throw new TypeError("Failed to fetch");
    });
    dialog = renderDialog("edit");
    fireEvent.change(within(dialog).getByLabelText("Description"), { target: { value: long } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(within(dialog).getByText(/can be saved once you are online/)).toBeTruthy());
    expect(screen.getByTestId("open").textContent).toBe("true");
    expect((within(dialog).getByLabelText("Description") as HTMLTextAreaElement).value).toBe(long);
    expect(screen.getByTestId("shown").textContent).toBe("Original v1");
    expect(calls).toHaveLength(0); // nothing waits in the outbox either

    // Back online (the REST request goes through now), the same dialog saves it.
    restAnswers = [[200, { ...R, body: long, version: 2 }]];
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(screen.getByTestId("shown").textContent).toBe("Original v2");
  });

  it("edit: any other failure rolls back and says so in a toast", async () => {
    answers = [{ error: { code: "internal", status: 500, message: "boom" } }];
    const dialog = renderDialog("edit");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Mine" } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(screen.getByText("The change was not saved")).toBeTruthy());
    expect(screen.getByTestId("shown").textContent).toBe("Original v1");
  });
});

/** A worker made the change, but its answer was over what NATS carries (docs/protocol.md, too_large). */
const APPLIED = { code: "too_large", status: 413, message: "the change was applied, but its answer is larger than the message bus carries", details: { applied: true } };

describe("ResourceDialog, when the hub made the change but could not send its answer (too_large, details.applied)", () => {
  it("edit: saved — the dialog closes, a toast says so and why it will not be read back, none says it failed, nothing is sent again, the card shows the change", async () => {
    answers = [{ error: APPLIED }];
    const dialog = renderDialog("edit");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Mine" } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(screen.getByTestId("shown").textContent).toBe("Mine v2");
    expect(screen.getAllByText("The change was saved")).not.toHaveLength(0);
    expect(screen.queryByText("The change was not saved")).toBeNull();
    expect(calls).toHaveLength(1);
  });

  it("edit over REST (a description too large for a frame): the same", async () => {
    const long = "x".repeat(70_000);
    restAnswers = [[413, { type: "about:blank", title: "Content Too Large", status: 413, code: "too_large", detail: APPLIED.message, details: { applied: true } }]];
    const dialog = renderDialog("edit");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Spec" } });
    fireEvent.change(within(dialog).getByLabelText("Description"), { target: { value: long } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(screen.getByTestId("shown").textContent).toBe("Spec v2");
    expect(screen.queryByText("The change was not saved")).toBeNull();
    expect(requests).toHaveLength(1);
  });

  it("create: done — the dialog closes without an error, and a toast says it was created but cannot be shown", async () => {
    answers = [{ error: APPLIED }];
    const dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Hello" } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    // The toast, and (once Radix announces it, which a loaded host may reach first) its live-region copy.
    expect(screen.getAllByText("“Hello” was created")).not.toHaveLength(0);
    expect(screen.getAllByText(/cannot be shown until an operator raises/)).not.toHaveLength(0);
    expect(screen.queryByText(/was not created/)).toBeNull();
    expect(calls).toHaveLength(1);
  });

  it("create made offline: its draft goes (the card is too large to be read back), and no toast says it failed", async () => {
    connection = "offline";
    let answer!: (error: unknown) => void;
    realtime.mutate.mockImplementationOnce(() => new Promise((_, reject) => (answer = reject)));
    const dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Written offline" } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(screen.getByTestId("cards").textContent).toContain("Written offline"));
    await act(async () => answer(HubError.fromFrame(APPLIED)));
    await waitFor(() => expect(screen.getAllByText("“Written offline” was created")).not.toHaveLength(0));
    expect(screen.getByTestId("cards").textContent).not.toContain("Written offline");
    expect(screen.queryByText(/was not created/)).toBeNull();
  });
});

/**
 * A hub's idempotency for `resources.create` and versions for `resources.update`: the first create under a key
 * makes a card; the same key and request again answers the stored reply; the same key with another request is
 * refused 422 `unprocessable` (handlers/idempotency.py). `lose` says which replies (by call, from 0) are lost
 * (a 504 after the hub made it). Calls made while not live wait until `reconnect()`.
 */
function fakeHub(lose: number[] = []) {
  const keys = new Map<string, { request: string; reply: Resource }>();
  const cards = new Map<string, Resource>();
  const waiting: Array<() => void> = [];
  let n = 0;
  const handle = (method: string, params: Record<string, unknown>, key: string): Resource => {
    const { workspace_id: _ws, ...rest } = params;
    if (method === "resources.create") {
      const request = JSON.stringify(params);
      const held = keys.get(key);
      if (held && held.request !== request) {
        throw HubError.fromFrame({
          code: "unprocessable",
          status: 422,
          message: "this Idempotency-Key was already used with a different request",
          details: { idempotency_key: key },
        });
      }
      if (held) return held.reply;
      const card: Resource = { ...R, ...(rest as Partial<Resource>), id: `made-${cards.size + 1}`, version: 1 };
      cards.set(card.id, card);
      keys.set(key, { request, reply: card });
      return card;
    }
    if (method === "resources.update") {
      const { resource_id: id, expected_version: version, ...patch } = rest as { resource_id: string; expected_version: number };
      const card = cards.get(id)!;
      if (card.version !== version) throw HubError.fromFrame({ code: "conflict", status: 409, message: "stale version", details: { reason: "stale_version" } });
      const next = { ...card, ...patch, version: card.version + 1 };
      cards.set(id, next);
      return next;
    }
    throw new Error(`unexpected ${method}`);
  };
  realtime.mutate.mockImplementation((method: string, params: unknown, options?: { idempotencyKey?: string }) => {
    const key = options?.idempotencyKey ?? `key-${calls.length}`;
    calls.push({ method, params: params as Record<string, unknown>, key });
    return new Promise((resolve, reject) => {
      const run = () => {
        const mine = n++;
        try {
          const reply = handle(method, params as Record<string, unknown>, key);
          if (lose.includes(mine)) reject(HubError.fromFrame({ code: "timeout", status: 504, message: "No reply within 30000 ms" }));
          else resolve(reply);
        } catch (error) {
          reject(error);
        }
      };
      if (connection === "live") run();
      else waiting.push(run);
    });
  });
  return {
    cards,
    /** The connection is back: the calls that waited are sent. */
    async reconnect() {
      connection = "live";
      await act(async () => {
        for (const run of waiting.splice(0)) run();
      });
    },
  };
}

/** Creates “Hello”, whose reply is lost (the hub made the card): the form stays open, saying no reply came. */
async function createHelloWhoseReplyIsLost(): Promise<HTMLElement> {
  const dialog = renderDialog("create");
  fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Hello" } });
  await submit(dialog, /^Create$/);
  await waitFor(() => expect(within(dialog).getByText(/No reply within/)).toBeTruthy());
  return dialog;
}

/** Puts `values` in the fields of those labels and saves the form again. */
async function saveAgain(dialog: HTMLElement, values: { Title?: string; Tags?: string }) {
  for (const [label, value] of Object.entries(values)) fireEvent.change(within(dialog).getByLabelText(label), { target: { value } });
  await submit(dialog, /^Create$/);
}

/** From now on a mutation fails with the error `failure` gives for it; one it gives none for goes on as before. */
function failMutations(failure: (method: string, params: unknown, key: string | undefined) => HubError | null) {
  const mutate = realtime.mutate.getMockImplementation()!;
  realtime.mutate.mockImplementation((method: string, params: unknown, options?: { idempotencyKey?: string }) => {
    const error = failure(method, params, options?.idempotencyKey);
    return error ? Promise.reject(error) : mutate(method, params, options);
  });
}

describe("ResourceDialog, a create saved again with other values after its reply was lost (the hub made the first)", () => {
  it("online: the earlier request is sent again for its card, which is shown, and the form's values go as an edit of it", async () => {
    const hub = fakeHub([0]);
    const dialog = await createHelloWhoseReplyIsLost();
    await saveAgain(dialog, { Title: "Hello, world", Tags: "x" });
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(calls.map((c) => c.method)).toEqual(["resources.create", "resources.create", "resources.create", "resources.update"]);
    expect(new Set(calls.slice(0, 3).map((c) => c.key)).size).toBe(1); // one key: a new one would make a second card
    expect(calls[2]!.params).toEqual(calls[0]!.params); // the request the hub applied, answered with its card
    expect(calls[3]!.params).toEqual({ workspace_id: WS, resource_id: "made-1", expected_version: 1, title: "Hello, world", tags: ["x"] });
    expect(hub.cards.size).toBe(1);
    expect(hub.cards.get("made-1")).toMatchObject({ title: "Hello, world", tags: ["x"], version: 2 });
    expect(screen.getByTestId("cards").textContent).toContain("Hello, world");
    expect(screen.queryByText(/already used with a different request/)).toBeNull();
    expect(screen.queryByText(/was not created|not applied/)).toBeNull();
  });

  it("online, the edit of the card refused: the card shows as made, the dialog closes and says the changes were not applied", async () => {
    const hub = fakeHub([0]);
    const dialog = await createHelloWhoseReplyIsLost();
    failMutations((method) => (method === "resources.update" ? HubError.fromFrame({ code: "forbidden", status: 403, message: "read-only" }) : null));
    await saveAgain(dialog, { Title: "Hello, world" });
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(screen.getAllByText("Your earlier save created “Hello”")).not.toHaveLength(0);
    expect(screen.getAllByText(/Your changes were not applied/)).not.toHaveLength(0);
    expect(screen.getByTestId("cards").textContent).toContain("Hello");
    expect(hub.cards.size).toBe(1);
  });

  it("online, the earlier request's answer lost again: the form stays open saying so; saved once more, the card comes", async () => {
    const hub = fakeHub([0, 2]);
    const dialog = await createHelloWhoseReplyIsLost();
    await saveAgain(dialog, { Title: "Hello, world" });
    await waitFor(() => expect(calls).toHaveLength(3));
    await waitFor(() => expect(within(dialog).getByText(/No reply within/)).toBeTruthy());
    expect(screen.getByTestId("open").textContent).toBe("true");
    expect(screen.queryByText(/already used with a different request/)).toBeNull();
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(hub.cards.size).toBe(1);
    expect(hub.cards.get("made-1")).toMatchObject({ title: "Hello, world", version: 2 });
    expect(screen.getByTestId("cards").textContent).toContain("Hello, world");
  });

  it("saved again offline: the draft waits; on reconnect the refusal brings the earlier card, edited to the form's values, and no toast says it failed", async () => {
    const hub = fakeHub([0]);
    const dialog = await createHelloWhoseReplyIsLost();
    connection = "offline";
    await saveAgain(dialog, { Title: "Hello, world" });
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(screen.getByTestId("cards").textContent).toContain("Hello, world"); // its draft
    await hub.reconnect();
    await waitFor(() => expect(hub.cards.get("made-1")).toMatchObject({ title: "Hello, world", version: 2 }));
    await waitFor(() => expect(screen.getByTestId("cards").textContent).toBe("Original, Hello, world"));
    expect(hub.cards.size).toBe(1);
    expect(calls[2]!.params).toEqual(calls[0]!.params);
    expect(calls[2]!.key).toBe(calls[0]!.key);
    expect(screen.queryByText(/was not created|not applied/)).toBeNull();
  });

  it("saved again offline, the earlier card not to be had (its request refused too): the draft goes and a toast says what the earlier save made", async () => {
    const hub = fakeHub([0]);
    const dialog = await createHelloWhoseReplyIsLost();
    connection = "offline";
    await saveAgain(dialog, { Title: "Hello, world" });
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    failMutations((_method, params, key) =>
      (params as { title?: string }).title === "Hello"
        ? HubError.fromFrame({ code: "unprocessable", status: 422, message: "this Idempotency-Key was already used with a different request", details: { idempotency_key: key } })
        : null,
    );
    await hub.reconnect();
    await waitFor(() => expect(screen.getAllByText("Your earlier save created “Hello”")).not.toHaveLength(0));
    expect(screen.getAllByText(/Your changes were not applied/)).not.toHaveLength(0);
    expect(screen.getByTestId("cards").textContent).toBe("Original");
    expect(screen.queryByText(/was not created/)).toBeNull();
  });
});
