/**
 * What the hub actually does (hub/ws/*.py, checked against a running hub),
 * beyond docs/protocol.md's tables: the exact frames and their order.
 */
import { describe, expect, it, vi } from "vitest";
import { HubError } from "../../errors";
import { type FakeSocket, flush, setup } from "./harness";

const CH = "user:u1";

function subscribeReply(socket: FakeSocket, result: Record<string, unknown>) {
  const frame = socket.last("subscribe");
  return { id: frame.id as number, result: { channel: frame.channel, recovered: false, publications: [], ...result } };
}

describe("the subscribe reply and live publications (the race found in the Python client)", () => {
  async function resumed() {
    const h = setup();
    let socket = await h.start();
    const offsets: number[] = [];
    const reloads: string[] = [];
    h.client.subscribe(CH, {
      onPublication: (p) => offsets.push(p.offset),
      onReload: (reason) => reloads.push(reason),
    });
    socket.push(subscribeReply(socket, { offset: 100, epoch: "e1" }));
    socket.push({ push: "pub", channel: CH, offset: 101, data: {} });
    socket.drop(1006);
    await h.untilRetry();
    socket = await h.accept();
    expect(socket.last("subscribe")).toMatchObject({ since: { offset: 101, epoch: "e1" } });
    return { h, socket, offsets, reloads };
  }

  it("applies the reply's replayed publications before a live pub that follows the reply", async () => {
    const { socket, offsets, reloads } = await resumed();
    // The hub sends the reply, then (from its buffer) the live ones after it.
    socket.push(subscribeReply(socket, { offset: 120, epoch: "e1", recovered: true, publications: [{ offset: 110, data: {} }, { offset: 120, data: {} }] }));
    socket.push({ push: "pub", channel: CH, offset: 121, data: {} });
    expect(offsets).toEqual([101, 110, 120, 121]);
    expect(reloads).toEqual([]);
  });

  it("…also when the reply and the live pub arrive in one batch frame", async () => {
    const { socket, offsets } = await resumed();
    socket.push([
      subscribeReply(socket, { offset: 120, epoch: "e1", recovered: true, publications: [{ offset: 110, data: {} }, { offset: 120, data: {} }] }),
      { push: "pub", channel: CH, offset: 121, data: {} },
    ]);
    expect(offsets).toEqual([101, 110, 120, 121]);
  });

  it("…and synchronously: nothing between the reply and the next frame can deliver the live one first", async () => {
    const { socket, offsets } = await resumed();
    const order: string[] = [];
    const reply = subscribeReply(socket, { offset: 120, epoch: "e1", recovered: true, publications: [{ offset: 110, data: {} }] });
    socket.push(reply);
    order.push(`after reply: ${offsets.join(",")}`);
    socket.push({ push: "pub", channel: CH, offset: 121, data: {} });
    order.push(`after pub: ${offsets.join(",")}`);
    expect(order).toEqual(["after reply: 101,110", "after pub: 101,110,121"]);
  });

  it("a live pub that races ahead of the reply is held, then delivered after the replayed ones", async () => {
    const { socket, offsets } = await resumed();
    socket.push({ push: "pub", channel: CH, offset: 121, data: {} });
    expect(offsets).toEqual([101]);
    socket.push(subscribeReply(socket, { offset: 120, epoch: "e1", recovered: true, publications: [{ offset: 110, data: {} }, { offset: 120, data: {} }] }));
    expect(offsets).toEqual([101, 110, 120, 121]);
  });

  it("the hub's first reply (offset 0 on an empty channel, recovered false, no since) is not a reload", async () => {
    const h = setup();
    const socket = await h.start();
    const onReload = vi.fn();
    const onSubscribed = vi.fn();
    const sub = h.client.subscribe(CH, { onReload, onSubscribed });
    socket.push(subscribeReply(socket, { offset: 0, epoch: "1795692053712608", recovered: false }));
    expect(onReload).not.toHaveBeenCalled();
    expect(onSubscribed).toHaveBeenCalledWith(expect.objectContaining({ offset: 0, resumed: false }));
    expect(sub.position).toEqual({ offset: 0, epoch: "1795692053712608" });
  });
});

describe("pings, errors and pushes as the hub sends them", () => {
  it("answers every {\"push\":\"ping\"} with {\"op\":\"pong\"} (no id) and counts it as liveness", async () => {
    const h = setup();
    const socket = await h.start();
    for (let i = 0; i < 3; i += 1) {
      await h.clock.advance(25_000);
      socket.push({ push: "ping" });
    }
    expect(socket.framesOf("pong")).toEqual([{ op: "pong" }, { op: "pong" }, { op: "pong" }]);
    expect(h.client.state).toBe("live"); // 75 s, but never 2 intervals without a frame
  });

  it("rejects a call with the hub's error object: code, message, status, details", async () => {
    const h = setup();
    const socket = await h.start();
    const call = h.client.rpc("users.update_me", { display_name: "" });
    const id = socket.last("rpc").id as number;
    socket.push({
      id,
      error: {
        code: "validation_failed",
        message: "display_name: String should have at least 1 character",
        status: 422,
        details: { errors: [{ loc: ["display_name"], msg: "String should have at least 1 character", type: "string_too_short" }] },
      },
    });
    const error = (await call.catch((e: unknown) => e)) as HubError;
    expect(error).toBeInstanceOf(HubError);
    expect(error).toMatchObject({ code: "validation_failed", status: 422, local: false });
    expect(error.fieldErrors[0]?.loc).toEqual(["display_name"]);
  });

  it("a subscribe refused with forbidden (another user's channel) fails that channel only", async () => {
    const h = setup();
    const socket = await h.start();
    const onError = vi.fn();
    const sub = h.client.subscribe("user:other", { onError });
    socket.push({ id: socket.last("subscribe").id, error: { code: "forbidden", message: "that is another user's channel", status: 403, details: { channel: "user:other" } } });
    expect(sub.status).toBe("failed");
    expect(onError.mock.calls[0]![0]).toMatchObject({ code: "forbidden", details: { channel: "user:other" } });
    expect(h.client.state).toBe("live");
  });

  it("an error frame with id null (the hub could not tell which command) is logged, not fatal", async () => {
    const logger = vi.fn();
    const h = setup({ logger });
    const socket = await h.start();
    socket.push({ id: null, error: { code: "rate_limited", message: "too many commands on this connection", status: 429, details: { retry_after: 0.01 } } });
    expect(logger).toHaveBeenCalledWith("hub_error", expect.objectContaining({ code: "rate_limited" }));
    expect(h.client.state).toBe("live");
  });

  it("a gap push: unsubscribe, then subscribe since the last offset (the hub answers them in order)", async () => {
    const h = setup();
    const socket = await h.start();
    h.client.subscribe("ticker:btc");
    socket.push(subscribeReply(socket, { offset: 10, epoch: "e1" }));
    socket.push({ push: "pub", channel: "ticker:btc", offset: 14, data: { key: "btc" } });
    socket.push({ push: "gap", channel: "ticker:btc", dropped: 7 });
    expect(socket.frames.slice(-2).map((f) => [f.op, f.since ?? null])).toEqual([
      ["unsubscribe", null],
      ["subscribe", { offset: 14, epoch: "e1" }],
    ]);
  });

  it("the unsubscribed push (membership removed, code 4003) stops the channel without a resubscribe", async () => {
    const h = setup();
    const socket = await h.start();
    const onUnsubscribed = vi.fn();
    const sub = h.client.subscribe("workspace:w1", { onUnsubscribed });
    socket.push(subscribeReply(socket, { offset: 1, epoch: "e1" }));
    socket.push({ push: "unsubscribed", channel: "workspace:w1", code: 4003, reason: "your membership was removed" });
    expect(sub.status).toBe("unsubscribed");
    expect(onUnsubscribed).toHaveBeenCalledWith({ code: 4003, reason: "your membership was removed" });
  });
});

describe("close codes as the hub sends them", () => {
  it("deactivation: disconnect push {code 4003, reconnect false}, then close 4003 → halted forbidden", async () => {
    const h = setup();
    const socket = await h.start();
    socket.push({ push: "disconnect", code: 4003, reason: "this account was deactivated", reconnect: false });
    socket.drop(4003, "this account was deactivated");
    await h.clock.advance(60_000);
    expect(h.sockets).toHaveLength(1);
    expect(h.client.getSnapshot()).toMatchObject({
      state: "offline",
      halted: "forbidden",
      lastClose: { code: 4003, reason: "this account was deactivated" },
    });
  });

  it("a revoked session (logout everywhere): 4001 → one forced refresh; null (signed out) halts", async () => {
    const h = setup();
    const socket = await h.start();
    h.getToken.mockResolvedValueOnce(null);
    socket.push({ push: "disconnect", code: 4001, reason: "this session has ended; sign in again", reconnect: true });
    socket.drop(4001);
    await h.clock.advance(0);
    expect(h.getToken).toHaveBeenLastCalledWith({ forceRefresh: true, rejected: "token-1" });
    expect(h.client.getSnapshot()).toMatchObject({ halted: "signed_out" });
  });

  it("1009 (a frame over the hub's limit; no disconnect push): the suspect call fails with too_large and is not re-sent", async () => {
    const h = setup();
    let socket = await h.start();
    const small = h.client.mutate("users.update_me", { display_name: "x" });
    const big = h.client.mutate("resources.create", { workspace_id: "w1", body: "y".repeat(40_000) });
    socket.drop(1009);
    const error = (await big.catch((e: unknown) => e)) as HubError;
    expect(error).toMatchObject({ code: "too_large", local: true });
    expect(error.details.idempotency_key).toBe("key-2");
    expect(h.client.state).toBe("reconnecting");
    await h.untilRetry();
    socket = await h.accept();
    expect(socket.framesOf("rpc").map((f) => f.method)).toEqual(["users.update_me"]); // only the small one again
    socket.reply(socket.last("rpc").id as number, { ok: true });
    await expect(small).resolves.toEqual({ ok: true });
  });

  it("refuses a frame over maxFrameBytes before sending it (the hub would close with 1009)", async () => {
    const h = setup({ maxFrameBytes: 1024 });
    const socket = await h.start();
    await expect(h.client.mutate("resources.create", { workspace_id: "w1", body: "é".repeat(600) })).rejects.toMatchObject({
      code: "too_large",
      details: { limit: 1024 },
    });
    expect(socket.framesOf("rpc")).toHaveLength(0);
    await flush();
    expect(h.client.state).toBe("live");
  });
});
