// @vitest-environment jsdom
import { act, cleanup, render, screen, waitFor } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import { AuthSession } from "@/lib/api/session";
import type { UserPublic } from "@/lib/api/types";
import { RealtimeProvider } from "@/lib/realtime/react";
import { flush, setup } from "@/lib/realtime/__tests__/harness";

/**
 * The board page when the hub refuses its subscription: refused access reads as "not
 * found" (the hub does not say whether the workspace exists), any other refusal as
 * itself — the board cannot be followed live — not as a missing workspace.
 */
const ME: UserPublic = { id: "u1", email: "a@example.com", display_name: "Ada", role: "member", is_active: true, email_verified: true, created_at: "x", last_login_at: null };

const calls: string[] = [];
const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
  const key = `${init?.method ?? "GET"} ${String(url)}`;
  calls.push(key);
  if (key.startsWith("GET /api/v1/workspaces/w1/resources")) return new Response(JSON.stringify({ items: [], next_cursor: null }), { status: 200 });
  if (key === "GET /api/v1/workspaces/w1") {
    return new Response(JSON.stringify({ id: "w1", name: "Team", role: "owner", version: 1, created_by: "u1", created_at: "x", updated_at: "x" }), { status: 200 });
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
const { SessionStoreProvider } = await import("../providers/session-store-provider");
const { ToastProvider } = await import("../toaster");

beforeEach(() => {
  h = setup();
  calls.length = 0;
});
afterEach(cleanup);

/** Render the board and have the hub refuse its subscribe with `error`. */
async function refusedWith(error: { code: string; message: string; status: number }) {
  session.accept({ access_token: "t", token_type: "bearer", expires_in: 900, refresh_expires_in: 2592000, refresh_token: null, user: ME });
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: 60_000 } } });
  render(
    <QueryClientProvider client={queries}>
      <SessionStoreProvider>
        <ToastProvider>
          <RealtimeProvider client={h.client}>
            <WorkspaceBoard />
          </RealtimeProvider>
        </ToastProvider>
      </SessionStoreProvider>
    </QueryClientProvider>,
  );
  const socket = await act(async () => h.accept());
  const subscribe = socket.last("subscribe");
  expect(subscribe.channel).toBe("workspace:w1");
  await act(async () => {
    socket.fail(subscribe.id as number, error);
    await flush();
  });
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
