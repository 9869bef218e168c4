// @vitest-environment jsdom
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, cleanup, render, screen, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import type { Resource } from "@/lib/api/resources";
import { RealtimeProvider, useChannel } from "@/lib/realtime/react";
import { flush, setup, type FakeSocket } from "@/lib/realtime/__tests__/harness";

/**
 * The query hooks against a fake REST hub and a scripted realtime hub: the
 * board's listing waits for the subscription and runs once (pages followed up
 * to `autoLoadUpTo`), events change it without a request, `onReload` reads it
 * again, and a read that went early is repeated once subscribed.
 */
const res = (id: string, version = 1): Resource => ({
  id,
  workspace_id: "w1",
  kind: "task",
  title: `${id}@${version}`,
  body: "",
  status: "open",
  position: "a0",
  tags: [],
  data: {},
  version,
  created_by: "u1",
  updated_by: "u1",
  created_at: "x",
  updated_at: "x",
  deleted_at: null,
});

let routes: Record<string, () => unknown> = {};
const calls: string[] = [];
const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
  const key = `${init?.method ?? "GET"} ${String(url)}`;
  calls.push(key);
  const body = routes[key]?.();
  return new Response(JSON.stringify(body ?? { code: "not_found", status: 404, detail: key }), { status: body ? 200 : 404 });
});
let h = setup();
const api = new ApiClient({ fetch: fetchImpl as unknown as typeof fetch, tokens: { getToken: async () => "t" } });
vi.mock("@/lib/services", () => ({ getServices: () => ({ api }) }));

const { useResourcesQuery, useMembersQuery } = await import("../hooks");
const { useWorkspaceLive } = await import("../live");

const LIST = "GET /api/v1/workspaces/w1/resources?limit=100";
const PAGE2 = "GET /api/v1/workspaces/w1/resources?limit=100&cursor=c2";
const MEMBERS = "GET /api/v1/workspaces/w1/members?limit=100";

function Board({ loadWaitMs }: { loadWaitMs?: number }) {
  const live = useWorkspaceLive("w1", { loadWaitMs });
  const list = useResourcesQuery("w1", {}, { enabled: live.ready, autoLoadUpTo: 500 });
  const members = useMembersQuery("w1", { enabled: live.ready });
  return (
    <>
      <p data-testid="titles">{list.items.map((r) => r.title).join(",")}</p>
      <p data-testid="members">{members.data?.items.length ?? "-"}</p>
    </>
  );
}

/** Render `node` with the providers; `show(other)` renders another node in their place (navigation). */
function mount(node: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: 60_000 } } });
  const within = (child: ReactNode) => (
    <QueryClientProvider client={client}>
      <RealtimeProvider client={h.client}>{child}</RealtimeProvider>
    </QueryClientProvider>
  );
  const view = render(within(node));
  return { show: (other: ReactNode) => view.rerender(within(other)) };
}

const titles = () => screen.getByTestId("titles").textContent;

async function subscribed(socket: FakeSocket, recovered = false, epoch = "e") {
  await act(async () => {
    const sub = socket.last("subscribe");
    socket.reply(sub.id as number, { channel: "workspace:w1", offset: 0, epoch, recovered, publications: [] });
    await flush();
  });
}

beforeEach(() => {
  h = setup();
});

afterEach(() => {
  cleanup();
  h.client.close();
  calls.length = 0;
});

describe("useWorkspaceLive + useResourcesQuery", () => {
  it("reads once the subscription stands, follows the pages, applies events without a request, reads again on onReload", async () => {
    routes = {
      [LIST]: () => ({ items: [res("a"), res("b")], next_cursor: "c2" }),
      [PAGE2]: () => ({ items: [res("c")], next_cursor: null }),
      [MEMBERS]: () => ({ items: [], next_cursor: null }),
    };
    mount(<Board />);
    const socket = await act(async () => h.accept());
    expect(socket.last("subscribe").channel).toBe("workspace:w1");
    expect(calls).toEqual([]); // nothing before the subscription
    await subscribed(socket);
    await waitFor(() => expect(titles()).toBe("a@1,b@1,c@1"));
    expect([...calls].sort()).toEqual([LIST, MEMBERS, PAGE2].sort());

    const before = calls.length;
    const pub = (offset: number, type: string, data: unknown) =>
      act(async () => {
        socket.push({ push: "pub", channel: "workspace:w1", offset, data: { id: `e${offset}`, type, channel: "workspace:w1", at: "x", data } });
        await flush();
      });
    await pub(1, "resource.created", res("n"));
    await pub(2, "resource.updated", res("c", 2));
    await pub(3, "resource.updated", res("c", 1)); // older: ignored
    await pub(4, "resource.deleted", { ...res("a", 2), hard: false });
    await waitFor(() => expect(titles()).toBe("n@1,b@1,c@2"));
    expect(calls.length).toBe(before);

    // Missed events the hub cannot replay: every query of the workspace reads again.
    routes[LIST] = () => ({ items: [res("b", 5)], next_cursor: null });
    await act(async () => {
      socket.drop(1006);
      await h.untilRetry();
    });
    const again = await act(async () => h.accept());
    await subscribed(again, false, "other-epoch");
    await waitFor(() => expect(titles()).toBe("b@5"));
    expect(calls.slice(before).sort()).toEqual([LIST, MEMBERS].sort());
  });

  it("a read that went before the subscription (wait over) runs once more when it arrives", async () => {
    routes = { [LIST]: () => ({ items: [res("a")], next_cursor: null }), [MEMBERS]: () => ({ items: [], next_cursor: null }) };
    mount(<Board loadWaitMs={0} />);
    const socket = await act(async () => h.accept());
    await waitFor(() => expect(titles()).toBe("a@1"));
    expect(calls.filter((c) => c === LIST)).toHaveLength(1);
    routes[LIST] = () => ({ items: [res("a"), res("b")], next_cursor: null });
    await subscribed(socket);
    await waitFor(() => expect(titles()).toBe("a@1,b@1"));
    expect(calls.filter((c) => c === LIST)).toHaveLength(2);
  });

  describe("leaving the board and coming back within staleTime", () => {
    function OtherListener() {
      useWorkspaceLive("w1");
      return <p>members</p>;
    }
    /** The activity page: listens to the channel, but puts no event into the cache. */
    function ChannelOnly() {
      useChannel("workspace:w1");
      return <p>activity</p>;
    }
    const pages = { board: <Board />, elsewhere: <p>elsewhere</p>, "other listener": <OtherListener />, "channel only": <ChannelOnly /> };
    let show: (page: ReactNode) => void = () => {};
    async function go(page: keyof typeof pages) {
      await act(async () => show(pages[page]));
      await act(async () => h.clock.advance(0)); // a released channel's unsubscribe
    }

    it("reads the board again once the new subscription stands: events went unheard meanwhile", async () => {
      routes = { [LIST]: () => ({ items: [res("a"), res("b")], next_cursor: null }), [MEMBERS]: () => ({ items: [], next_cursor: null }) };
      ({ show } = mount(pages.board));
      const socket = await act(async () => h.accept());
      await subscribed(socket);
      await waitFor(() => expect(titles()).toBe("a@1,b@1"));
      await go("elsewhere");
      expect(socket.last("unsubscribe")).toMatchObject({ channel: "workspace:w1" });
      routes[LIST] = () => ({ items: [res("a"), res("c")], next_cursor: null }); // changed while nobody listened
      await go("board");
      await subscribed(socket);
      await waitFor(() => expect(titles()).toBe("a@1,c@1"));
      expect(calls.filter((c) => c === LIST)).toHaveLength(2);
    });

    it("reads the board again when the page that kept the channel did not put its events into the cache", async () => {
      routes = { [LIST]: () => ({ items: [res("a"), res("b")], next_cursor: null }), [MEMBERS]: () => ({ items: [], next_cursor: null }) };
      ({ show } = mount(pages.board));
      const socket = await act(async () => h.accept());
      await subscribed(socket);
      await waitFor(() => expect(titles()).toBe("a@1,b@1"));
      await go("channel only");
      await act(async () => {
        socket.push({ push: "pub", channel: "workspace:w1", offset: 1, data: { id: "e1", type: "resource.created", channel: "workspace:w1", at: "x", data: res("c") } });
        await flush();
      });
      routes[LIST] = () => ({ items: [res("a"), res("b"), res("c")], next_cursor: null });
      await go("board");
      await waitFor(() => expect(titles()).toBe("a@1,b@1,c@1"));
      expect(socket.framesOf("subscribe")).toHaveLength(1); // the channel was kept all along
      expect(calls.filter((c) => c === LIST)).toHaveLength(2);
    });

    it("does not read again when another page kept the channel meanwhile", async () => {
      routes = { [LIST]: () => ({ items: [res("a")], next_cursor: null }), [MEMBERS]: () => ({ items: [], next_cursor: null }) };
      ({ show } = mount(pages.board));
      const socket = await act(async () => h.accept());
      await subscribed(socket);
      await waitFor(() => expect(titles()).toBe("a@1"));
      await go("other listener");
      await go("board");
      await act(async () => {
        await flush();
      });
      expect(socket.framesOf("subscribe")).toHaveLength(1);
      expect(calls.filter((c) => c === LIST)).toHaveLength(1);
      expect(titles()).toBe("a@1");
    });
  });
});
