// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import { AuthSession } from "@/lib/api/session";
import type { ActivityPublic } from "@/lib/api/workspaces";
import { RealtimeProvider } from "@/lib/realtime/react";
import { flush, setup } from "@/lib/realtime/__tests__/harness";

/** The activity feed: cursor paging, and a burst of events → one first-page read merged in without duplicates. */
const entry = (id: number, title = `r${id}`): ActivityPublic => ({
  id,
  workspace_id: "w1",
  actor_id: "u1",
  action: "resource.created",
  subject_type: "resource",
  subject_id: `s${id}`,
  before_version: null,
  after_version: 1,
  at: new Date().toISOString(),
  summary: { title, kind: "task" },
});

let head: ActivityPublic[] = [entry(5), entry(4)];
const member = (user_id: string, display_name: string) => ({ workspace_id: "w1", user_id, email: `${user_id}@x`, display_name, role: "member", joined_at: "x", updated_at: "x" });
/** Members' pages by their query string (after `members?`); a missing one is a 404. */
let memberPages: Record<string, unknown> = { "limit=100": { items: [member("u1", "Ada")], next_cursor: null } };
const calls: string[] = [];
const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
  const key = `${init?.method ?? "GET"} ${String(url)}`;
  calls.push(key);
  const routes: Record<string, unknown> = {
    "GET /api/v1/workspaces/w1": { id: "w1", name: "Team", role: "member", version: 1, created_by: "u1", created_at: "x", updated_at: "x" },
    "GET /api/v1/workspaces/w1/activity?limit=30": { items: head, next_cursor: "c1" },
    "GET /api/v1/workspaces/w1/activity?limit=30&cursor=c1": { items: [entry(4), entry(3), entry(2)], next_cursor: null },
  };
  const members = key.match(/^GET \/api\/v1\/workspaces\/w1\/members\?(.*)$/);
  const body = members ? memberPages[members[1]!] : routes[key];
  return new Response(JSON.stringify(body ?? { code: "not_found", status: 404, message: key }), { status: body ? 200 : 404 });
});

let h = setup();
const session = new AuthSession({ locks: null, fetch: vi.fn(async () => new Response(null, { status: 401 })) as unknown as typeof fetch });
const api = new ApiClient({ fetch: fetchImpl as unknown as typeof fetch, tokens: { getToken: async () => "t" } });

vi.mock("@/lib/services", () => ({ getServices: () => ({ session, api, realtime: h.client }) }));
vi.mock("next/navigation", () => ({
  useSearchParams: () => new URLSearchParams("id=w1"),
  usePathname: () => "/workspace/activity/",
  useRouter: () => ({ push: vi.fn(), replace: vi.fn() }),
}));

const { ActivityView } = await import("@/app/(app)/workspace/activity/activity-view");
const { SessionStoreProvider } = await import("../providers/session-store-provider");
const { ToastProvider } = await import("../toaster");

beforeEach(() => {
  h = setup();
});
afterEach(cleanup);

function renderFeed() {
  render(
    <SessionStoreProvider>
      <ToastProvider>
        <RealtimeProvider client={h.client}>
          <ActivityView />
        </RealtimeProvider>
      </ToastProvider>
    </SessionStoreProvider>,
  );
}

const ids = () => screen.queryAllByTestId("activity-entry").map((e) => Number(e.getAttribute("data-id")));

describe("activity feed", () => {
  it("pages with Load more (no repeats), and a burst of events reads the first page once and merges it", async () => {
    render(
      <SessionStoreProvider>
        <ToastProvider>
          <RealtimeProvider client={h.client}>
            <ActivityView />
          </RealtimeProvider>
        </ToastProvider>
      </SessionStoreProvider>,
    );
    const socket = await act(async () => h.accept());
    await waitFor(() => expect(ids()).toEqual([5, 4]));
    expect(screen.getAllByTestId("activity-entry")[0]!.textContent).toContain("Ada created task “r5”");

    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(ids()).toEqual([5, 4, 3, 2]));
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();

    const sub = socket.last("subscribe");
    await act(async () => {
      socket.reply(sub.id as number, { channel: "workspace:w1", offset: 0, epoch: "e", recovered: false, publications: [] });
      await flush();
    });
    head = [entry(7), entry(6), entry(5)];
    const before = calls.filter((c) => c.endsWith("activity?limit=30")).length;
    await act(async () => {
      for (const offset of [1, 2, 3]) {
        socket.push({ push: "pub", channel: "workspace:w1", offset, data: { id: `e${offset}`, type: "resource.updated", channel: "workspace:w1", at: "x", data: {} } });
      }
      socket.push({ push: "pub", channel: "workspace:w1", offset: 4, data: { id: "e4", type: "user.updated", channel: "workspace:w1", at: "x", data: {} } });
      await flush();
    });
    await waitFor(() => expect(ids()).toEqual([7, 6, 5, 4, 3, 2]));
    expect(calls.filter((c) => c.endsWith("activity?limit=30")).length).toBe(before + 1);
  });

  describe("who did it", () => {
    const byActor = (...actors: string[]) => actors.map((actor, i) => ({ ...entry(20 - i), actor_id: actor }));
    const actorsShown = () => screen.queryAllByTestId("activity-entry").map((e) => e.textContent!.split(" created")[0]);

    it("names members from every page of the members list; only an actor on none of them is a former member", async () => {
      head = byActor("u1", "u2", "u9");
      memberPages = {
        "limit=100": { items: [member("u1", "Ada")], next_cursor: "m2" },
        "limit=100&cursor=m2": { items: [member("u2", "Bo")], next_cursor: null },
      };
      renderFeed();
      await act(async () => h.accept());
      await waitFor(() => expect(actorsShown()).toEqual(["Ada", "Bo", "A former member"]));
    });

    it("while the members list is not all read (a page failed), an unknown actor is just a member", async () => {
      head = byActor("u1", "u2");
      memberPages = { "limit=100": { items: [member("u1", "Ada")], next_cursor: "m2" } }; // the second page: 404
      renderFeed();
      await act(async () => h.accept());
      await waitFor(() => expect(calls).toContain("GET /api/v1/workspaces/w1/members?limit=100&cursor=m2"));
      await waitFor(() => expect(actorsShown()).toEqual(["Ada", "A member"]));
    });
  });
});
