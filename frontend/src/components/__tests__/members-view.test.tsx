// @vitest-environment jsdom
import { act, cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import { AuthSession } from "@/lib/api/session";
import type { UserPublic } from "@/lib/api/types";
import type { MemberPublic } from "@/lib/api/workspaces";
import { flush, setup } from "@/lib/realtime/__tests__/harness";
import { openLivePage } from "./live-page";

/**
 * The members page against a fake REST hub and a scripted realtime hub:
 * `member.*` events on `workspace:<id>` change the list without a REST call,
 * `onReload` reads it again, and the hub's 409 is shown. Each case mounts the
 * page on a fresh realtime client and query cache (small tests, no shared state).
 */
const ME: UserPublic = { id: "u1", email: "a@example.com", display_name: "Ada", role: "member", is_active: true, email_verified: true, created_at: "x", last_login_at: null };
const member = (user_id: string, email: string, role: MemberPublic["role"]): MemberPublic => ({
  workspace_id: "w1",
  user_id,
  email,
  display_name: email.split("@")[0]!,
  role,
  joined_at: "x",
  updated_at: "x",
});

const invitation = (id: string, email: string) => ({ id, workspace_id: "w1", email, role: "member", invited_by: "u1", status: "pending", created_at: "x", expires_at: "2030-01-01T00:00:00Z" });

const MEMBERS = "GET /api/v1/workspaces/w1/members?limit=100";
const INVITATIONS = "GET /api/v1/workspaces/w1/invitations?limit=100";
const baseRoutes: Record<string, () => [number, unknown]> = {
  "GET /api/v1/workspaces/w1": () => [200, { id: "w1", name: "Team", role: "owner", version: 1, created_by: "u1", created_at: "x", updated_at: "x" }],
  [MEMBERS]: () => [200, { items: [member("u1", "a@example.com", "owner")], next_cursor: null }],
  [INVITATIONS]: () => [200, { items: [], next_cursor: null }],
  "POST /api/v1/workspaces/w1/leave": () => [409, { code: "conflict", status: 409, message: "a workspace keeps at least one owner: make someone else owner first" }],
};
let routes = { ...baseRoutes };
const calls: string[] = [];
const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
  const key = `${init?.method ?? "GET"} ${String(url)}`;
  calls.push(key);
  const [status, body] = routes[key]?.() ?? [404, { code: "not_found", status: 404, message: key }];
  return new Response(JSON.stringify(body), { status });
});

let h = setup();
const session = new AuthSession({ locks: null, fetch: vi.fn(async () => new Response(null, { status: 401 })) as unknown as typeof fetch });
const api = new ApiClient({ fetch: fetchImpl as unknown as typeof fetch, tokens: { getToken: async () => "t" } });
const push = vi.fn();

vi.mock("@/lib/services", () => ({ getServices: () => ({ session, api, realtime: h.client }) }));
vi.mock("next/navigation", () => ({
  useSearchParams: () => new URLSearchParams("id=w1"),
  usePathname: () => "/workspace/members/",
  useRouter: () => ({ push, replace: push }),
}));

const { MembersView } = await import("@/app/(app)/workspace/members/members-view");

beforeEach(() => {
  h = setup();
  routes = { ...baseRoutes };
  calls.length = 0;
  push.mockClear();
});
afterEach(cleanup);

const invitationRows = () => screen.queryAllByTestId("invitation-row").map((r) => r.getAttribute("data-email"));
const rows = () => screen.queryAllByTestId("member-row").map((r) => `${r.getAttribute("data-email")}:${r.getAttribute("data-role")}`);

/** Render the page, let its subscription stand (the reads wait for it), and wait for the first members. */
async function mount() {
  const { socket, queries } = await openLivePage(<MembersView />, { session, h, user: ME });
  await waitFor(() => expect(rows()).toEqual(["a@example.com:owner"]));
  // On a slow host the reads may have gone before the subscription (after LOAD_WAIT_MS): they are read once more; let that settle.
  await waitFor(() => expect(queries.isFetching()).toBe(0));
  return socket;
}

describe("members page", () => {
  it("follows member.* and workspace.* events live, without a REST call", async () => {
    const socket = await mount();
    const restCalls = calls.length;
    const pub = (offset: number, type: string, data: unknown) =>
      act(async () => {
        socket.push({ push: "pub", channel: "workspace:w1", offset, data: { id: `e${offset}`, type, channel: "workspace:w1", at: "x", data } });
        await flush();
      });
    await pub(1, "member.added", member("u2", "b@example.com", "member"));
    await pub(2, "member.added", member("u2", "b@example.com", "member")); // a repeat (different offset) does not duplicate
    await pub(3, "member.updated", member("u2", "b@example.com", "admin"));
    await pub(4, "member.added", member("u3", "c@example.com", "viewer"));
    await pub(5, "member.removed", member("u3", "c@example.com", "viewer"));
    await pub(6, "workspace.updated", { id: "w1", name: "Team renamed", version: 2 });
    // The cache notifies its observers on a timer (TanStack's notifyManager): wait for the render.
    await waitFor(() => {
      expect(rows()).toEqual(["a@example.com:owner", "b@example.com:admin"]);
      expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Members · Team renamed");
    });
    expect(calls.length).toBe(restCalls);

    // Removed myself: the page says so and stops following the workspace.
    await pub(7, "member.removed", member("u1", "a@example.com", "owner"));
    await waitFor(() => expect(screen.getByTestId("members-gone").textContent).toMatch(/no longer a member/));
  });

  it("shows the hub's 409 when the last owner leaves", async () => {
    await mount();
    fireEvent.click(screen.getByRole("button", { name: "Leave" }));
    fireEvent.click(within(await screen.findByRole("alertdialog")).getByRole("button", { name: "Leave" }));
    await waitFor(() => expect(screen.getByTestId("members-error").textContent).toMatch(/keeps at least one owner/));
    expect(push).not.toHaveBeenCalled();
  });

  it("leaving, made by the hub but unanswered (too_large, details.applied), reads as done: no error, off to the workspaces", async () => {
    routes["POST /api/v1/workspaces/w1/leave"] = () => [413, { code: "too_large", status: 413, detail: "the change was applied", details: { applied: true } }];
    await mount();
    fireEvent.click(screen.getByRole("button", { name: "Leave" }));
    fireEvent.click(within(await screen.findByRole("alertdialog")).getByRole("button", { name: "Leave" }));
    await waitFor(() => expect(push).toHaveBeenCalledWith("/workspaces/"));
    expect(screen.queryByTestId("members-error")).toBeNull();
  });

  it("a role change made by the hub but unanswered reads as done: the row shows the new role, no error", async () => {
    routes[MEMBERS] = () => [200, { items: [member("u1", "a@example.com", "owner"), member("u2", "b@example.com", "member")], next_cursor: null }];
    routes["PATCH /api/v1/workspaces/w1/members/u2"] = () => [413, { code: "too_large", status: 413, detail: "the change was applied", details: { applied: true } }];
    const { queries } = await openLivePage(<MembersView />, { session, h, user: ME });
    await waitFor(() => expect(rows()).toEqual(["a@example.com:owner", "b@example.com:member"]));
    await waitFor(() => expect(queries.isFetching()).toBe(0));
    fireEvent.change(screen.getByRole("combobox", { name: "Role of b@example.com" }), { target: { value: "admin" } });
    await waitFor(() => expect(rows()).toEqual(["a@example.com:owner", "b@example.com:admin"]));
    expect(screen.queryByTestId("members-error")).toBeNull();
  });

  it("an invitation made by the hub but unanswered reads as sent, and the pending list is read again", async () => {
    routes["POST /api/v1/workspaces/w1/members"] = () => [413, { code: "too_large", status: 413, detail: "the change was applied", details: { applied: true } }];
    await mount();
    const reads = calls.filter((c) => c === INVITATIONS).length;
    routes[INVITATIONS] = () => [200, { items: [invitation("i1", "new@example.com")], next_cursor: null }];
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "new@example.com" } });
    fireEvent.click(screen.getByRole("button", { name: "Add member" }));
    await waitFor(() => expect(screen.getByTestId("add-outcome").textContent).toContain("Invitation sent to new@example.com (member)"));
    await waitFor(() => expect(invitationRows()).toEqual(["new@example.com"]));
    expect(calls.filter((c) => c === INVITATIONS).length).toBeGreaterThan(reads);
  });

  it("Load more reads the next page of members and of invitations; events land in the loaded pages", async () => {
    routes[MEMBERS] = () => [200, { items: [member("u1", "a@example.com", "owner")], next_cursor: "m1" }];
    routes[`${MEMBERS}&cursor=m1`] = () => [200, { items: [member("u3", "c@example.com", "member")], next_cursor: null }];
    routes[INVITATIONS] = () => [200, { items: [invitation("i1", "p@example.com")], next_cursor: "i1" }];
    routes[`${INVITATIONS}&cursor=i1`] = () => [200, { items: [invitation("i2", "q@example.com")], next_cursor: null }];
    const socket = await mount();
    const pub = (offset: number, type: string, data: unknown) =>
      act(async () => {
        socket.push({ push: "pub", channel: "workspace:w1", offset, data: { id: `e${offset}`, type, channel: "workspace:w1", at: "x", data } });
        await flush();
      });
    // Past the loaded page while the hub has more: not shown; the next page is the hub's to bring.
    await pub(1, "member.added", member("u9", "z@example.com", "viewer"));
    await waitFor(() => expect(invitationRows()).toEqual(["p@example.com"]));
    expect(rows()).toEqual(["a@example.com:owner"]);

    fireEvent.click(within(screen.getByTestId("members-more")).getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(rows()).toEqual(["a@example.com:owner", "c@example.com:member"]));
    expect(within(screen.getByTestId("members-more")).queryByRole("button")).toBeNull(); // the last page
    fireEvent.click(within(screen.getByTestId("invitations-more")).getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(invitationRows()).toEqual(["p@example.com", "q@example.com"]));

    // Now the whole list is loaded: a change on the second page, a new member into its place, an accepted invitation out.
    const restCalls = calls.length;
    await pub(2, "member.updated", member("u3", "c@example.com", "admin"));
    await pub(3, "member.added", member("u2", "b@example.com", "member"));
    await pub(4, "member.added", member("u4", "q@example.com", "member"));
    await pub(5, "invitation.revoked", invitation("i1", "p@example.com"));
    await waitFor(() => {
      expect(rows()).toEqual(["a@example.com:owner", "b@example.com:member", "c@example.com:admin", "q@example.com:member"]);
      expect(invitationRows()).toEqual([]);
    });
    expect(calls.length).toBe(restCalls);
  });

  it("reads the members again when the hub cannot replay missed events", async () => {
    const socket = await mount();
    routes[MEMBERS] = () => [200, { items: [member("u1", "a@example.com", "owner"), member("u4", "d@example.com", "member")], next_cursor: null }];
    await act(async () => {
      socket.drop(1006);
      await h.untilRetry();
    });
    const again = await act(async () => h.accept());
    await act(async () => {
      const sub = again.last("subscribe");
      again.reply(sub.id as number, { channel: "workspace:w1", offset: 0, epoch: "other-epoch", recovered: false, publications: [] });
      await flush();
    });
    await waitFor(() => expect(rows()).toEqual(["a@example.com:owner", "d@example.com:member"]));
  });
});
