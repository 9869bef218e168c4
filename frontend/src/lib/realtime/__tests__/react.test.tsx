// @vitest-environment jsdom
import { StrictMode, useState } from "react";
import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { RealtimeClient } from "../client";
import { RealtimeProvider, useChannel, useConnectionState, usePresence } from "../react";
import { flush, setup } from "./harness";

const WS = "workspace:9";

afterEach(cleanup);

function Board({ channel }: { channel: string }) {
  const [items, setItems] = useState<number[]>([]);
  const view = useChannel<{ n: number }>(channel, {
    onPublication: (p) => setItems((xs) => [...xs, p.data.n]),
  });
  return (
    <div>
      <span data-testid="status">{view.status}</span>
      <span data-testid="items">{items.join(",")}</span>
    </div>
  );
}

function Status() {
  return <span data-testid="conn">{useConnectionState().state}</span>;
}

function Who() {
  const { members, stale } = usePresence(WS);
  return (
    <span data-testid="who" data-stale={stale}>
      {members.map((m) => m.client).join(",")}
    </span>
  );
}

function app(client: RealtimeClient, children: React.ReactNode) {
  return (
    <StrictMode>
      <RealtimeProvider client={client}>{children}</RealtimeProvider>
    </StrictMode>
  );
}

async function settle(h: ReturnType<typeof setup>) {
  await act(async () => {
    await h.clock.advance(0);
  });
}

describe("React bindings under StrictMode", () => {
  it("opens one socket for the tab despite the double mount", async () => {
    const h = setup();
    render(app(h.client, <Board channel={WS} />));
    await settle(h);
    expect(h.sockets).toHaveLength(1);
    expect(h.sockets[0]!.closedByClient).toBeNull();
  });

  it("sends one subscribe and no unsubscribe for a double-mounted useChannel", async () => {
    const h = setup();
    render(app(h.client, <Board channel={WS} />));
    await act(async () => {
      await h.accept();
    });
    await settle(h);
    expect(h.latest().frames.map((f) => f.op)).toEqual(["connect", "subscribe"]);
  });

  it("delivers publications to the component once each", async () => {
    const h = setup();
    render(app(h.client, <Board channel={WS} />));
    let socket = h.sockets[0]!;
    await act(async () => {
      socket = await h.accept();
    });
    await settle(h);
    act(() => {
      const sub = socket.last("subscribe");
      socket.reply(sub.id as number, { channel: WS, offset: 1, epoch: "e", recovered: false, publications: [] });
      socket.push({ push: "pub", channel: WS, offset: 2, data: { n: 2 } });
      socket.push({ push: "pub", channel: WS, offset: 2, data: { n: 2 } });
      socket.push({ push: "pub", channel: WS, offset: 5, data: { n: 5 } });
    });
    expect(screen.getByTestId("status").textContent).toBe("subscribed");
    expect(screen.getByTestId("items").textContent).toBe("2,5");
  });

  it("shows the connection state", async () => {
    const h = setup();
    render(app(h.client, <Status />));
    expect(screen.getByTestId("conn").textContent).toBe("connecting");
    await act(async () => {
      await h.accept();
    });
    expect(screen.getByTestId("conn").textContent).toBe("live");
  });

  it("forgets the channel and closes the socket when the tree unmounts", async () => {
    const h = setup();
    const view = render(app(h.client, <Board channel={WS} />));
    let socket = h.sockets[0]!;
    await act(async () => {
      socket = await h.accept();
    });
    act(() => {
      socket.reply(socket.last("subscribe").id as number, { channel: WS, offset: 1, epoch: "e", recovered: false, publications: [] });
    });
    view.unmount();
    await settle(h);
    // The socket close ends every hub-side subscription; no unsubscribe frame is needed.
    expect(socket.closedByClient?.code).toBe(1000);
    expect(h.client.channelNames).toEqual([]);
    expect(h.client.state).toBe("offline");
  });

  it("moves the subscription when the channel prop changes", async () => {
    const h = setup();
    const view = render(app(h.client, <Board channel="workspace:1" />));
    let socket = h.sockets[0]!;
    await act(async () => {
      socket = await h.accept();
    });
    view.rerender(app(h.client, <Board channel="workspace:2" />));
    await settle(h);
    expect(socket.frames.map((f) => [f.op, f.channel])).toEqual([
      ["connect", undefined],
      ["subscribe", "workspace:1"],
      ["subscribe", "workspace:2"],
      ["unsubscribe", "workspace:1"],
    ]);
  });

  it("calls the latest handler after a re-render, without resubscribing", async () => {
    const h = setup();
    const seen: string[] = [];
    function Tagged({ tag }: { tag: string }) {
      useChannel(WS, { onPublication: (p) => seen.push(`${tag}:${p.offset}`) });
      return null;
    }
    const view = render(app(h.client, <Tagged tag="first" />));
    let socket = h.sockets[0]!;
    await act(async () => {
      socket = await h.accept();
    });
    act(() => {
      socket.reply(socket.last("subscribe").id as number, { channel: WS, offset: 1, epoch: "e", recovered: false, publications: [] });
    });
    view.rerender(app(h.client, <Tagged tag="second" />));
    await settle(h);
    act(() => {
      socket.push({ push: "pub", channel: WS, offset: 2, data: {} });
    });
    expect(seen).toEqual(["second:2"]);
    expect(socket.frames.map((f) => f.op)).toEqual(["connect", "subscribe"]);
  });

  it("lists presence from the snapshot, then applies the diffs", async () => {
    const h = setup();
    render(app(h.client, <Who />));
    let socket = h.sockets[0]!;
    await act(async () => {
      socket = await h.accept();
    });
    await act(async () => {
      socket.reply(socket.last("subscribe").id as number, { channel: WS, offset: 1, epoch: "e", recovered: false, publications: [] });
      await flush();
    });
    await act(async () => {
      socket.push({ push: "presence", channel: WS, joined: [{ user: "u3", client: "c3" }], left: [] });
      socket.reply(socket.last("presence").id as number, {
        members: [{ user: { id: "u1" }, client: "c1", joined_at: "t" }],
      });
      await flush();
    });
    expect(screen.getByTestId("who").textContent).toBe("c1,c3");
    act(() => {
      socket.push({
        push: "presence",
        channel: WS,
        joined: [{ user: "u4", client: "c4" }],
        left: [{ user: "u1", client: "c1" }],
      });
    });
    expect(screen.getByTestId("who").textContent).toBe("c3,c4");
  });

  it("says the list may be out of date while its snapshot failed, and not once a fresh one came", async () => {
    const h = setup();
    render(app(h.client, <Who />));
    let socket = h.sockets[0]!;
    await act(async () => {
      socket = await h.accept();
    });
    const subscribed = async () => {
      await act(async () => {
        socket.reply(socket.last("subscribe").id as number, { channel: WS, offset: 1, epoch: "e", recovered: true, publications: [] });
        await flush();
      });
    };
    /** The socket drops; the client comes back on a new one and resubscribes. */
    const awayAndBack = async () => {
      await act(async () => {
        socket.drop(1006);
        await h.untilRetry();
        socket = await h.accept();
      });
      await subscribed();
    };
    const answerSnapshot = async (members: Array<{ user: string; client: string; joined_at: string }>) => {
      await act(async () => {
        socket.reply(socket.last("presence").id as number, { members });
        await flush();
      });
    };
    await subscribed();
    await answerSnapshot([{ user: "u1", client: "c1", joined_at: "t" }]);
    expect(screen.getByTestId("who").dataset.stale).toBe("false");

    // Away and back: the snapshot after the resubscription is refused (not retried: bad_request).
    await awayAndBack();
    await act(async () => {
      socket.fail(socket.last("presence").id as number, { code: "bad_request", status: 400 });
      await flush();
    });
    expect(screen.getByTestId("who").textContent).toBe("c1");
    expect(screen.getByTestId("who").dataset.stale).toBe("true");

    // The next resubscription's snapshot comes: fresh again.
    await awayAndBack();
    await answerSnapshot([{ user: "u2", client: "c2", joined_at: "t" }]);
    expect(screen.getByTestId("who").textContent).toBe("c2");
    expect(screen.getByTestId("who").dataset.stale).toBe("false");
  });
});
