// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { useReducer, useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import type { Resource } from "@/lib/api/resources";
import { boardReducer, initialBoardState, viewOf } from "@/lib/board/store";

type Call = { url: string; init: RequestInit };
const calls: Call[] = [];
let responses: Array<[number, unknown]> = [];
const fetch = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
  calls.push({ url: String(url), init: init ?? {} });
  const [status, body] = responses.shift() ?? [599, undefined];
  return new Response(body === undefined ? null : JSON.stringify(body), { status });
});
const api = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, tokens: { getToken: async () => "t" } });
vi.mock("@/lib/services", () => ({ getServices: () => ({ api }) }));

const { ResourceDialog } = await import("../resource-form-dialog");
const { useEditor } = await import("../use-live-resources");
const { ToastProvider } = await import("../../toaster");

afterEach(() => {
  cleanup();
  calls.length = 0;
  responses = [];
});

const WS = "w1";
const R: Resource = {
  id: "r1",
  workspace_id: WS,
  kind: "task",
  title: "Original",
  body: "",
  status: "open",
  tags: [],
  data: {},
  version: 1,
  created_by: "u1",
  updated_by: "u1",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  deleted_at: null,
};

const headers = (call: Call | undefined) => (call?.init.headers ?? {}) as Record<string, string>;
const problem422 = (...errors: Array<{ loc: (string | number)[]; msg: string }>) => [
  422,
  { type: "about:blank", title: "Validation failed", status: 422, code: "validation_failed", detail: "invalid", details: { errors: errors.map((e) => ({ ...e, type: "value_error" })) } },
] as [number, unknown];

function Harness({ mode }: { mode: "create" | "edit" }) {
  const [state, dispatch] = useReducer(boardReducer, boardReducer(initialBoardState, { type: "upsert", resource: R }));
  const [open, setOpen] = useState(true);
  const editor = useEditor(WS, dispatch);
  const view = viewOf(state, "r1");
  return (
    <>
      <p data-testid="shown">{view ? `${view.title} v${view.version}` : "none"}</p>
      <p data-testid="open">{String(open)}</p>
      {mode === "create" ? (
        <ResourceDialog mode="create" open={open} onOpenChange={setOpen} workspaceId={WS} dispatch={dispatch} />
      ) : (
        <ResourceDialog mode="edit" open={open} onOpenChange={setOpen} workspaceId={WS} dispatch={dispatch} resource={state.items.r1!} editor={editor} />
      )}
    </>
  );
}

function renderDialog(mode: "create" | "edit") {
  render(
    <ToastProvider>
      <Harness mode={mode} />
    </ToastProvider>,
  );
  return screen.getByRole("dialog");
}

async function submit(dialog: HTMLElement, name: RegExp) {
  await act(async () => {
    fireEvent.click(within(dialog).getByRole("button", { name }));
  });
}

describe("ResourceDialog", () => {
  it("create: sends an Idempotency-Key; the hub's 422 goes on the named fields (tags.N → Tags)", async () => {
    responses = [problem422({ loc: ["body", "title"], msg: "title must not be blank" }, { loc: ["body", "tags", 1], msg: "bad tag" })];
    const dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Hello" } });
    fireEvent.change(within(dialog).getByLabelText("Tags"), { target: { value: "a, b" } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(within(dialog).getByText("Title must not be blank.")).toBeTruthy());
    expect(within(dialog).getByLabelText("Title").getAttribute("aria-invalid")).toBe("true");
    expect(within(dialog).getByText("Bad tag.")).toBeTruthy();
    expect(within(dialog).getByLabelText("Tags").getAttribute("aria-invalid")).toBe("true");
    expect(calls[0]!.init.method).toBe("POST");
    expect(headers(calls[0])["Idempotency-Key"]).toBeTruthy();
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ title: "Hello", kind: "task", status: "open", tags: ["a", "b"], body: "" });
    expect(screen.getByTestId("open").textContent).toBe("true");
  });

  it("create: Zod refuses a bad kind before any request", async () => {
    const dialog = renderDialog("create");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Hello" } });
    fireEvent.change(within(dialog).getByLabelText("Kind"), { target: { value: "Not A Word" } });
    await submit(dialog, /^Create$/);
    await waitFor(() => expect(within(dialog).getByText("A lower-case word, e.g. task")).toBeTruthy());
    expect(calls).toHaveLength(0);
  });

  it("edit: a 412 shows the newer version; saving again overwrites it with If-Match of that version", async () => {
    responses = [
      [412, { code: "precondition_failed", status: 412, title: "Precondition failed", detail: "stale version" }],
      [200, { ...R, title: "Theirs", version: 2 }],
      [200, { ...R, title: "Mine", version: 3 }],
    ];
    const dialog = renderDialog("edit");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Mine" } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(within(dialog).getByTestId("conflict")).toBeTruthy());
    expect(within(dialog).getByTestId("conflict-current-title").textContent).toBe("“Theirs”");
    expect(screen.getByTestId("shown").textContent).toBe("Theirs v2");
    expect((within(dialog).getByLabelText("Title") as HTMLInputElement).value).toBe("Mine");
    expect(headers(calls[0])["If-Match"]).toBe('"1"');
    expect(calls[1]!.url).toBe("/api/v1/workspaces/w1/resources/r1?include_deleted=true");

    await submit(dialog, /Overwrite with mine/);
    await waitFor(() => expect(screen.getByTestId("open").textContent).toBe("false"));
    expect(headers(calls[2])["If-Match"]).toBe('"2"');
    expect(JSON.parse(String(calls[2]!.init.body))).toEqual({ title: "Mine" });
    expect(screen.getByTestId("shown").textContent).toBe("Mine v3");
  });

  it("edit: any other failure rolls back and says so in a toast", async () => {
    responses = [[500, { code: "internal", status: 500, title: "Internal", detail: "boom" }]];
    const dialog = renderDialog("edit");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Mine" } });
    await submit(dialog, /^Save$/);
    await waitFor(() => expect(screen.getByText("The change was not saved")).toBeTruthy());
    expect(screen.getByTestId("shown").textContent).toBe("Original v1");
  });
});
