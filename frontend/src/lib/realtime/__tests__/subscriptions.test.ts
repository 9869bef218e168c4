import { describe, expect, it, vi } from "vitest";
import type { ChannelHandlers } from "../channel";
import { type FakeSocket, flush, setup } from "./harness";

const WS = "workspace:7";

function subscribed(socket: FakeSocket, result: Partial<Record<string, unknown>> = {}) {
  const frame = socket.last("subscribe");
  socket.reply(frame.id as number, {
    channel: frame.channel,
    offset: 100,
    epoch: "e1",
    recovered: false,
    publications: [],
    ...result,
  });
  return frame;
}

function recorder() {
  const offsets: number[] = [];
  const reloads: string[] = [];
  const handlers = {
    onPublication: vi.fn((p: { offset: number }) => offsets.push(p.offset)),
    onReload: vi.fn((reason: string) => reloads.push(reason)),
    onSubscribed: vi.fn(),
    onStatus: vi.fn(),
    onError: vi.fn(),
    onUnsubscribed: vi.fn(),
    onPresence: vi.fn(),
  } satisfies ChannelHandlers;
  return { handlers, offsets, reloads };
}

describe("subscribing", () => {
  it("sends subscribe without since the first time", async () => {
    const h = setup();
    const socket = await h.start();
    h.client.subscribe(WS);
    expect(socket.last("subscribe")).toEqual({ id: 2, op: "subscribe", channel: WS });
  });

  it("waits for the connection before sending subscribe", async () => {
    const h = setup();
    const sub = h.client.subscribe(WS);
    expect(sub.status).toBe("pending");
    const socket = await h.start();
    expect(socket.framesOf("subscribe")).toHaveLength(1);
    expect(sub.status).toBe("subscribing");
  });

  it("reports status pending → subscribing → subscribed and the stream position", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    const sub = h.client.subscribe(WS, r.handlers);
    subscribed(socket, { offset: 100, epoch: "e1" });
    expect(r.handlers.onStatus.mock.calls.map((c) => c[0])).toEqual(["pending", "subscribing", "subscribed"]);
    expect(r.handlers.onSubscribed).toHaveBeenCalledWith({
      channel: WS,
      offset: 100,
      epoch: "e1",
      recovered: true,
      resumed: false,
    });
    expect(sub.position).toEqual({ offset: 100, epoch: "e1" });
    expect(r.reloads).toEqual([]);
  });

  it("fails for good on a non-retryable error", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    const sub = h.client.subscribe(WS, r.handlers);
    socket.fail(socket.last("subscribe").id as number, { code: "forbidden", status: 403 });
    await h.clock.advance(60_000);
    expect(sub.status).toBe("failed");
    expect(r.handlers.onError.mock.calls[0]![0]).toMatchObject({ code: "forbidden", status: 403 });
    expect(socket.framesOf("subscribe")).toHaveLength(1);
  });

  it("retries after a backoff on a retryable error", async () => {
    const h = setup();
    const socket = await h.start();
    const sub = h.client.subscribe(WS);
    socket.fail(socket.last("subscribe").id as number, { code: "unavailable", status: 503 });
    expect(sub.status).toBe("pending");
    await h.clock.advance(250);
    expect(socket.framesOf("subscribe")).toHaveLength(2);
  });

  it("retries when the subscribe reply does not come in time", async () => {
    const h = setup({ rpcTimeoutMs: 1_000 });
    const socket = await h.start();
    h.client.subscribe(WS);
    await h.clock.advance(1_000);
    await h.clock.advance(250);
    expect(socket.framesOf("subscribe")).toHaveLength(2);
  });

  it("takes a subscribe reply that comes after its deadline but before the retry", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    const sub = h.client.subscribe(WS, r.handlers);
    const first = socket.last("subscribe");
    await h.clock.advance(10_001); // the client gives up waiting; the retry waits a backoff step
    socket.reply(first.id as number, { channel: WS, offset: 100, epoch: "e1", recovered: false, publications: [] });
    socket.push({ push: "pub", channel: WS, offset: 101, data: {} });
    await h.clock.advance(2_000);
    socket.push({ push: "pub", channel: WS, offset: 102, data: {} });
    expect(r.offsets).toEqual([101, 102]);
    expect(sub.status).toBe("subscribed");
    expect(socket.framesOf("subscribe")).toHaveLength(1);
    expect(r.handlers.onError).not.toHaveBeenCalled();
  });

  it("unsubscribes before retrying a subscribe the hub may still be answering, and resumes from the last offset", async () => {
    const h = setup();
    let socket = await h.start();
    const r = recorder();
    const sub = h.client.subscribe(WS, r.handlers);
    subscribed(socket, { offset: 100, epoch: "e1" });
    socket.drop(1006);
    await h.untilRetry();
    socket = await h.accept();
    const slow = socket.last("subscribe"); // its history read takes longer than the deadline
    await h.clock.advance(10_000 + 500);
    expect(socket.frames.slice(-2)).toMatchObject([
      { op: "unsubscribe", channel: WS },
      { op: "subscribe", channel: WS, since: { offset: 100, epoch: "e1" } },
    ]);
    // The hub answers in order: the slow subscribe, its live pub, the unsubscribe, the retry.
    const [unsubscribe, retry] = socket.frames.slice(-2);
    socket.reply(slow.id as number, { channel: WS, offset: 101, epoch: "e1", recovered: true, publications: [{ offset: 101, data: {} }] });
    socket.push({ push: "pub", channel: WS, offset: 102, data: {} });
    socket.reply(unsubscribe!.id as number, {});
    socket.reply(retry!.id as number, {
      channel: WS,
      offset: 102,
      epoch: "e1",
      recovered: true,
      publications: [
        { offset: 101, data: {} },
        { offset: 102, data: {} },
      ],
    });
    socket.push({ push: "pub", channel: WS, offset: 103, data: {} });
    expect(r.offsets).toEqual([101, 102, 103]);
    expect(sub.status).toBe("subscribed");
    expect(r.handlers.onError).not.toHaveBeenCalled();
    expect(r.reloads).toEqual([]);
  });

  it("answers conflict (already subscribed) with an unsubscribe and a subscribe again", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    const sub = h.client.subscribe(WS, r.handlers);
    socket.fail(socket.last("subscribe").id as number, { code: "conflict", status: 409 });
    expect(sub.status).toBe("pending");
    await h.clock.advance(250);
    expect(socket.frames.slice(-2)).toMatchObject([
      { op: "unsubscribe", channel: WS },
      { op: "subscribe", channel: WS },
    ]);
    subscribed(socket);
    expect(sub.status).toBe("subscribed");
    expect(r.handlers.onError).not.toHaveBeenCalled();
  });

  it("subscribes again on a new socket a channel refused for the old socket's subscription limit", async () => {
    const h = setup();
    const socket = await h.start();
    const sub = h.client.subscribe(WS);
    socket.fail(socket.last("subscribe").id as number, { code: "too_large", status: 413, details: { limit: 100 } });
    expect(sub.status).toBe("failed");
    socket.drop(1006);
    await h.untilRetry();
    const next = await h.accept();
    expect(next.framesOf("subscribe")).toHaveLength(1);
    subscribed(next);
    expect(sub.status).toBe("subscribed");
  });

  it("keeps a channel the hub refused as forbidden failed across reconnects", async () => {
    const h = setup();
    const socket = await h.start();
    const sub = h.client.subscribe(WS);
    socket.fail(socket.last("subscribe").id as number, { code: "forbidden", status: 403 });
    socket.drop(1006);
    await h.untilRetry();
    const next = await h.accept();
    expect(next.framesOf("subscribe")).toHaveLength(0);
    expect(sub.status).toBe("failed");
  });
});

describe("publications", () => {
  it("delivers publications whose offsets rise with gaps (stream sequence numbers)", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    h.client.subscribe(WS, r.handlers);
    subscribed(socket, { offset: 100 });
    for (const offset of [103, 110, 111, 250]) socket.push({ push: "pub", channel: WS, offset, data: { offset } });
    expect(r.offsets).toEqual([103, 110, 111, 250]);
    expect(r.handlers.onPublication.mock.calls[0]![0]).toEqual({ channel: WS, offset: 103, data: { offset: 103 } });
  });

  it("drops a publication at or below the last offset seen", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    h.client.subscribe(WS, r.handlers);
    subscribed(socket, { offset: 100 });
    for (const offset of [100, 99, 105, 105, 104, 106]) socket.push({ push: "pub", channel: WS, offset, data: {} });
    expect(r.offsets).toEqual([105, 106]);
  });

  it("ignores publications for channels nobody listens to", async () => {
    const h = setup();
    const socket = await h.start();
    socket.push({ push: "pub", channel: "workspace:other", offset: 1, data: {} });
    expect(h.client.channelNames).toEqual([]);
  });

  it("holds live publications that arrive before the subscribe reply, then dedups them against the reply", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    h.client.subscribe(WS, r.handlers);
    socket.push({ push: "pub", channel: WS, offset: 101, data: {} });
    socket.push({ push: "pub", channel: WS, offset: 104, data: {} });
    subscribed(socket, { offset: 101, publications: [{ offset: 101, data: {} }] });
    expect(r.offsets).toEqual([101, 104]);
  });

  it("keeps delivering to the other listeners when one throws", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    h.client.subscribe(WS, {
      onPublication: () => {
        throw new Error("boom");
      },
    });
    h.client.subscribe(WS, r.handlers);
    subscribed(socket);
    socket.push({ push: "pub", channel: WS, offset: 101, data: {} });
    expect(r.offsets).toEqual([101]);
    expect(h.listenerErrors).toHaveLength(1);
  });
});

describe("recovery after a reconnect", () => {
  async function subscribedThenDropped() {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    const sub = h.client.subscribe(WS, r.handlers);
    subscribed(socket, { offset: 100, epoch: "e1" });
    socket.push({ push: "pub", channel: WS, offset: 107, data: {} });
    socket.drop(1006);
    await h.untilRetry();
    const next = await h.accept();
    return { h, r, sub, socket: next };
  }

  it("resubscribes with since = the last offset and epoch seen", async () => {
    const { socket, sub } = await subscribedThenDropped();
    expect(socket.last("subscribe")).toEqual({ id: 2, op: "subscribe", channel: WS, since: { offset: 107, epoch: "e1" } });
    expect(sub.status).toBe("subscribing");
  });

  it("reconnects at once when the socket closes while it resubscribes, not after the reply deadline", async () => {
    const { h, r, sub, socket } = await subscribedThenDropped();
    socket.push({ push: "disconnect", code: 4009, reason: "slow consumer", reconnect: true });
    socket.drop(4009, "slow consumer");
    expect(h.client.getSnapshot().state).not.toBe("live");
    expect(sub.status).toBe("pending");
    const wait = (h.client.getSnapshot().nextRetryAt ?? Infinity) - h.clock.now();
    expect(wait).toBeLessThan(2_000); // a backoff step, not the 10 s reply deadline
    await h.untilRetry();
    const third = await h.accept();
    expect(third.last("subscribe")).toMatchObject({ op: "subscribe", channel: WS, since: { offset: 107, epoch: "e1" } });
    subscribed(third, { offset: 107, epoch: "e1", recovered: true });
    expect(sub.status).toBe("subscribed");
    await h.clock.advance(30_000); // the first resubscribe's deadline passes: nothing happens
    expect(r.handlers.onError).not.toHaveBeenCalled();
    expect(h.sockets).toHaveLength(3);
  });

  it("delivers the replayed publications in order, then live ones, each offset once", async () => {
    const { socket, r } = await subscribedThenDropped();
    socket.push({ push: "pub", channel: WS, offset: 131, data: {} });
    subscribed(socket, {
      offset: 130,
      epoch: "e1",
      recovered: true,
      publications: [
        { offset: 120, data: {} },
        { offset: 107, data: {} },
        { offset: 130, data: {} },
      ],
    });
    socket.push({ push: "pub", channel: WS, offset: 131, data: {} });
    socket.push({ push: "pub", channel: WS, offset: 140, data: {} });
    expect(r.offsets).toEqual([107, 120, 130, 131, 140]);
    expect(r.reloads).toEqual([]);
  });

  it("reports the resumed subscription as recovered", async () => {
    const { socket, r } = await subscribedThenDropped();
    subscribed(socket, { offset: 130, epoch: "e1", recovered: true });
    expect(r.handlers.onSubscribed).toHaveBeenLastCalledWith(
      expect.objectContaining({ recovered: true, resumed: true }),
    );
  });

  it("asks for a reload when the hub could not recover", async () => {
    const { socket, r } = await subscribedThenDropped();
    subscribed(socket, { offset: 900, epoch: "e1", recovered: false });
    expect(r.reloads).toEqual(["not_recovered"]);
    socket.push({ push: "pub", channel: WS, offset: 901, data: {} });
    expect(r.offsets).toEqual([107, 901]);
  });

  it("asks for a reload when the epoch changed, whatever recovered says", async () => {
    const { socket, r, sub } = await subscribedThenDropped();
    subscribed(socket, { offset: 3, epoch: "e2", recovered: true });
    expect(r.reloads).toEqual(["epoch_changed"]);
    expect(sub.position).toEqual({ offset: 3, epoch: "e2" });
    socket.push({ push: "pub", channel: WS, offset: 4, data: {} });
    expect(r.offsets).toEqual([107, 4]);
  });

  it("does not resubscribe a channel the hub dropped", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    const sub = h.client.subscribe(WS, r.handlers);
    subscribed(socket);
    socket.push({ push: "unsubscribed", channel: WS, code: 4403, reason: "membership revoked" });
    expect(sub.status).toBe("unsubscribed");
    expect(r.handlers.onUnsubscribed).toHaveBeenCalledWith({ code: 4403, reason: "membership revoked" });
    socket.push({ push: "pub", channel: WS, offset: 200, data: {} });
    expect(r.offsets).toEqual([]);

    socket.drop(1006);
    await h.untilRetry();
    const next = await h.accept();
    expect(next.framesOf("subscribe")).toHaveLength(0);
  });
});

describe("gap (publications dropped for a slow consumer)", () => {
  it("unsubscribes and resubscribes from the last offset seen", async () => {
    const h = setup();
    const socket = await h.start();
    h.client.subscribe(WS);
    subscribed(socket, { offset: 100, epoch: "e1" });
    socket.push({ push: "pub", channel: WS, offset: 104, data: {} });
    socket.push({ push: "gap", channel: WS, dropped: 3 });
    expect(socket.frames.slice(-2)).toEqual([
      { id: 3, op: "unsubscribe", channel: WS },
      { id: 4, op: "subscribe", channel: WS, since: { offset: 104, epoch: "e1" } },
    ]);
  });

  it("fills the hole from the replay and dedups what was buffered meanwhile", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    h.client.subscribe(WS, r.handlers);
    subscribed(socket, { offset: 100 });
    socket.push({ push: "gap", channel: WS, dropped: 2 });
    socket.push({ push: "pub", channel: WS, offset: 140, data: {} });
    socket.reply(3, {});
    subscribed(socket, {
      offset: 140,
      recovered: true,
      publications: [
        { offset: 120, data: {} },
        { offset: 130, data: {} },
        { offset: 140, data: {} },
      ],
    });
    expect(r.offsets).toEqual([120, 130, 140]);
    expect(r.reloads).toEqual([]);
  });

  it("asks for a reload when the replay cannot fill the hole", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    h.client.subscribe(WS, r.handlers);
    subscribed(socket, { offset: 100 });
    socket.push({ push: "gap", channel: WS, dropped: 5000 });
    subscribed(socket, { offset: 9000, recovered: false });
    expect(r.reloads).toEqual(["not_recovered"]);
  });
});

describe("shared subscriptions (reference counting)", () => {
  it("sends one subscribe for many listeners of a channel", async () => {
    const h = setup();
    const socket = await h.start();
    const a = recorder();
    const b = recorder();
    h.client.subscribe(WS, a.handlers);
    h.client.subscribe(WS, b.handlers);
    subscribed(socket);
    socket.push({ push: "pub", channel: WS, offset: 101, data: {} });
    expect(socket.framesOf("subscribe")).toHaveLength(1);
    expect([a.offsets, b.offsets]).toEqual([[101], [101]]);
  });

  it("greets a late listener with the running subscription", async () => {
    const h = setup();
    const socket = await h.start();
    h.client.subscribe(WS);
    subscribed(socket, { offset: 100, epoch: "e1" });
    socket.push({ push: "pub", channel: WS, offset: 102, data: {} });
    const late = recorder();
    h.client.subscribe(WS, late.handlers);
    expect(late.handlers.onStatus).toHaveBeenCalledWith("subscribed");
    expect(late.handlers.onSubscribed).toHaveBeenCalledWith(expect.objectContaining({ offset: 102, epoch: "e1", joined: true }));
  });

  it("unsubscribes from the hub only when the last listener leaves", async () => {
    const h = setup();
    const socket = await h.start();
    const first = h.client.subscribe(WS);
    const second = h.client.subscribe(WS);
    subscribed(socket);
    first.unsubscribe();
    await h.clock.advance(0);
    expect(socket.framesOf("unsubscribe")).toHaveLength(0);
    second.unsubscribe();
    await h.clock.advance(0);
    expect(socket.last("unsubscribe")).toMatchObject({ op: "unsubscribe", channel: WS });
    expect(h.client.channelNames).toEqual([]);
  });

  it("sends nothing for an unsubscribe followed by a subscribe in the same tick (StrictMode)", async () => {
    const h = setup();
    const socket = await h.start();
    h.client.subscribe(WS).unsubscribe();
    h.client.subscribe(WS);
    await h.clock.advance(1_000);
    expect(socket.frames.map((f) => f.op)).toEqual(["connect", "subscribe"]);
  });

  it("forwards presence diffs to listeners, one call per push", async () => {
    const h = setup();
    const socket = await h.start();
    const r = recorder();
    h.client.subscribe(WS, r.handlers);
    subscribed(socket);
    const c2 = { user: "u2", client: "c2" };
    const c3 = { user: "u3", client: "c3" };
    socket.push({ push: "presence", channel: WS, joined: [c2, c3], left: [] });
    socket.push({ push: "presence", channel: WS, joined: [], left: [c2, { user: "u4" }] });
    expect(r.handlers.onPresence.mock.calls).toEqual([
      [{ joined: [c2, c3], left: [] }],
      [{ joined: [], left: [c2] }],
    ]);
  });

  it("retries a refused channel when a new listener arrives", async () => {
    const h = setup();
    const socket = await h.start();
    const first = h.client.subscribe(WS);
    socket.fail(socket.last("subscribe").id as number, { code: "forbidden" });
    expect(first.status).toBe("failed");
    h.client.subscribe(WS);
    await flush();
    expect(socket.framesOf("subscribe")).toHaveLength(2);
  });
});
