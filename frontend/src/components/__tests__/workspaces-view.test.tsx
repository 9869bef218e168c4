// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import { AuthSession } from "@/lib/api/session";
import type { UserPublic } from "@/lib/api/types";
import type { MemberPublic, MyWorkspace } from "@/lib/api/workspaces";
import { flush, setup } from "@/lib/realtime/__tests__/harness";

/**
 * The workspaces page on the query cache with a scripted realtime hub: the
 * list is read once; being added to a workspace elsewhere (`member.added` on
 * `user:<me>`, handled by RealtimeRoot) reads that workspace and puts it on
 * top, a removal takes it out, both without reading the list again; missed
 * events (`onReload`) read the list again.
 */
const ME: UserPublic = { id: "u1", email: "a@example.com", display_name: "Ada", role: "member", is_active: true, email_verified: true, created_at: "x", last_login_at: null };
const ws = (id: string, name: string): MyWorkspace => ({ id, name, role: "member", version: 1, created_by: "u9", created_at: "x", updated_at: "x" });
const member = (workspace_id: string): MemberPublic => ({ workspace_id, user_id: "u1", email: ME.email, display_name: "Ada", role: "member", joined_at: "x", updated_at: "x" });

const LIST = "GET /api/v1/workspaces?limit=20";
const routes: Record<string, () => unknown> = {
  [LIST]: () => ({ items: [ws("w1", "First")], next_cursor: null }),
  "GET /api/v1/workspaces/w2": () => ws("w2", "Second"),
};
const calls: string[] = [];
const idempotencyKeys: (string | null)[] = [];
const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
  const key = `${init?.method ?? "GET"} ${String(url)}`;
  calls.push(key);
  if (init?.method === "POST") idempotencyKeys.push(new Headers(init.headers).get("Idempotency-Key"));
  const body = routes[key]?.();
  if (body instanceof Response) return body;
  return new Response(JSON.stringify(body ?? { code: "not_found", status: 404, detail: key }), { status: body ? 200 : 404 });
});

const h = setup();
const session = new AuthSession({ locks: null, fetch: vi.fn(async () => new Response(null, { status: 401 })) as unknown as typeof fetch });
const api = new ApiClient({ fetch: fetchImpl as unknown as typeof fetch, tokens: { getToken: async () => "t" } });
vi.mock("@/lib/services", () => ({ getServices: () => ({ session, api, realtime: h.client, auth: { me: async () => ME } }) }));
vi.mock("next/navigation", () => ({ useRouter: () => ({ push: vi.fn(), replace: vi.fn() }), usePathname: () => "/workspaces/" }));

const { WorkspacesView } = await import("@/app/(app)/workspaces/workspaces-view");
const { RealtimeRoot } = await import("../providers/realtime-root");
const { SessionStoreProvider } = await import("../providers/session-store-provider");
const { ToastProvider } = await import("../toaster");

afterEach(cleanup);

const renderPage = () =>
  render(
    <SessionStoreProvider>
      <ToastProvider>
        <RealtimeRoot>
          <WorkspacesView />
        </RealtimeRoot>
      </ToastProvider>
    </SessionStoreProvider>,
  );

const names = () => screen.queryAllByTestId("workspace-row").map((row) => row.getAttribute("data-workspace-id"));

describe("workspaces page", () => {
  it("reads the list once and follows the user's channel without reading it again", async () => {
    session.accept({ access_token: "t", token_type: "bearer", expires_in: 900, refresh_expires_in: 2592000, refresh_token: null, user: ME });
    renderPage();
    const socket = await act(async () => h.accept());
    await waitFor(() => expect(names()).toEqual(["w1"]));
    await act(async () => {
      const sub = socket.last("subscribe");
      expect(sub.channel).toBe("user:u1");
      socket.reply(sub.id as number, { channel: "user:u1", offset: 0, epoch: "e", recovered: false, publications: [] });
      await flush();
    });

    const pub = (offset: number, type: string, data: unknown) =>
      act(async () => {
        socket.push({ push: "pub", channel: "user:u1", offset, data: { id: `e${offset}`, type, channel: "user:u1", at: "x", data } });
        await flush();
      });
    await pub(1, "member.added", member("w2"));
    await waitFor(() => expect(names()).toEqual(["w2", "w1"]));
    await pub(2, "member.removed", member("w1"));
    await waitFor(() => expect(names()).toEqual(["w2"]));
    expect(calls.filter((c) => c === LIST)).toHaveLength(1);
    expect(calls).toContain("GET /api/v1/workspaces/w2");

    // Missed events the hub cannot replay: the list is read again.
    routes[LIST] = () => ({ items: [ws("w3", "Third"), ws("w2", "Second")], next_cursor: null });
    await act(async () => {
      socket.drop(1006);
      await h.untilRetry();
    });
    const again = await act(async () => h.accept());
    await act(async () => {
      const sub = again.last("subscribe");
      again.reply(sub.id as number, { channel: "user:u1", offset: 0, epoch: "other", recovered: false, publications: [] });
      await flush();
    });
    await waitFor(() => expect(names()).toEqual(["w3", "w2"]));
    expect(calls.filter((c) => c === LIST)).toHaveLength(2);
  });

  it("creates again after a timeout with the same idempotency key, so one workspace is made", async () => {
    session.accept({ access_token: "t", token_type: "bearer", expires_in: 900, refresh_expires_in: 2592000, refresh_token: null, user: ME });
    const answers = [
      () => new Response(JSON.stringify({ code: "timeout", status: 504, message: "no reply in time" }), { status: 504 }),
      () => new Response(JSON.stringify({ ...ws("w9", "Design"), role: "owner" }), { status: 201 }),
    ];
    routes["POST /api/v1/workspaces"] = () => answers.shift()!();
    idempotencyKeys.length = 0;
    renderPage();
    fireEvent.click(await screen.findByRole("button", { name: "New workspace" }));
    fireEvent.change(screen.getByLabelText("Workspace name"), { target: { value: "Design" } });
    fireEvent.click(screen.getByRole("button", { name: "Create" }));
    await waitFor(() => expect(idempotencyKeys).toHaveLength(1));
    await screen.findByRole("button", { name: "Create" }); // the form is back, with the error
    fireEvent.click(screen.getByRole("button", { name: "Create" }));
    await waitFor(() => expect(idempotencyKeys).toHaveLength(2));
    expect(idempotencyKeys[0]).toBeTruthy();
    expect(idempotencyKeys[1]).toBe(idempotencyKeys[0]);
  });

  it("a create, rename or delete the hub made but could not answer (too_large, details.applied) reads as done", async () => {
    session.accept({ access_token: "t", token_type: "bearer", expires_in: 900, refresh_expires_in: 2592000, refresh_token: null, user: ME });
    const applied = () => new Response(JSON.stringify({ code: "too_large", status: 413, detail: "the change was applied", details: { applied: true } }), { status: 413 });
    routes[LIST] = () => ({ items: [{ ...ws("w1", "First"), role: "owner" }], next_cursor: null });
    routes["POST /api/v1/workspaces"] = applied;
    routes["PATCH /api/v1/workspaces/w1"] = applied;
    routes["DELETE /api/v1/workspaces/w1"] = applied;
    renderPage();
    await waitFor(() => expect(names()).toEqual(["w1"]));

    fireEvent.click(await screen.findByRole("button", { name: "New workspace" }));
    fireEvent.change(screen.getByLabelText("Workspace name"), { target: { value: "Design" } });
    fireEvent.click(screen.getByRole("button", { name: "Create" }));
    expect(await screen.findAllByText("Workspace created")).not.toHaveLength(0); // the toast (and its live-region copy)
    await waitFor(() => expect(screen.queryByLabelText("Workspace name")).toBeNull());

    fireEvent.click(screen.getByRole("button", { name: "Rename First" }));
    fireEvent.change(screen.getByLabelText("New name"), { target: { value: "Renamed" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(screen.queryByLabelText("New name")).toBeNull());
    expect(screen.getByTestId("workspace-row").textContent).toContain("Renamed");

    fireEvent.click(screen.getByRole("button", { name: "Delete Renamed" }));
    fireEvent.click(within(await screen.findByRole("alertdialog")).getByRole("button", { name: "Delete" }));
    expect(await screen.findAllByText("Workspace deleted")).not.toHaveLength(0); // the toast (and its live-region copy)
    await waitFor(() => expect(names()).toEqual([]));
    expect(screen.queryByText("Could not delete the workspace")).toBeNull();
    expect(document.body.textContent).not.toContain("too large to send back");
  });
});

