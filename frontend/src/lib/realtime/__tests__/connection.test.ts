import { describe, expect, it } from "vitest";
import { CloseCode, SUBPROTOCOL } from "../types";
import { CONNECT_RESULT, HUB_URL, flush, setup } from "./harness";

describe("connecting", () => {
  it("opens one socket on the hub URL with the hubbub.v1.json subprotocol", async () => {
    const h = setup();
    h.client.retain();
    await flush();
    expect(h.sockets.map((s) => [s.url, s.protocols])).toEqual([[HUB_URL, SUBPROTOCOL]]);
  });

  it("sends connect with the access token as the first frame", async () => {
    const h = setup();
    h.client.retain();
    await flush();
    h.latest().open();
    expect(h.latest().frames).toEqual([{ id: 1, op: "connect", token: "token-1" }]);
    expect(h.getToken).toHaveBeenCalledWith({ forceRefresh: false });
  });

  it("goes connecting → live and exposes the client id and user", async () => {
    const h = setup();
    const states: string[] = [];
    h.client.onStateChange(() => states.push(h.client.state));
    await h.start();
    expect(states).toEqual(["connecting", "live"]);
    expect(h.client.getSnapshot()).toMatchObject({ state: "live", clientId: "client-1", user: CONNECT_RESULT.user });
  });

  it("does nothing until retained", async () => {
    const h = setup();
    await h.clock.advance(60_000);
    expect(h.sockets).toHaveLength(0);
    expect(h.client.state).toBe("offline");
  });

  it("handles a JSON array frame as a batch, in order", async () => {
    const h = setup();
    const socket = await h.start();
    const seen: number[] = [];
    h.client.subscribe("workspace:1", { onPublication: (p) => seen.push(p.offset) });
    const sub = socket.last("subscribe");
    socket.push([
      { id: sub.id, result: { channel: "workspace:1", offset: 10, epoch: "e1", recovered: false, publications: [] } },
      { push: "pub", channel: "workspace:1", offset: 12, data: {} },
      { push: "pub", channel: "workspace:1", offset: 15, data: {} },
    ]);
    expect(seen).toEqual([12, 15]);
  });

  it("answers an application ping with a pong that has no id", async () => {
    const h = setup();
    const socket = await h.start();
    socket.push({ push: "ping" });
    expect(socket.frames.at(-1)).toEqual({ op: "pong" });
  });

  it("ignores malformed and unknown frames", async () => {
    const h = setup();
    const socket = await h.start();
    socket.pushRaw("{not json");
    socket.push({ push: "mystery" });
    socket.push(42);
    expect(h.client.state).toBe("live");
  });
});

describe("reconnecting with backoff", () => {
  it("waits a full-jitter delay, doubling per failed attempt", async () => {
    // random() = 0.5, base 500 ms: 250, 500, 1000 ms
    const h = setup();
    await h.start();
    h.latest().drop(1006);
    expect(h.client.state).toBe("reconnecting");
    expect(h.clock.pendingDelays()).toContain(250);

    await h.clock.advance(249);
    expect(h.sockets).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.sockets).toHaveLength(2);

    h.latest().drop(1006);
    expect(h.client.getSnapshot().nextRetryAt).toBe(h.clock.now() + 500);
    await h.clock.advance(500);
    expect(h.sockets).toHaveLength(3);

    h.latest().drop(1006);
    expect(h.client.getSnapshot().nextRetryAt).toBe(h.clock.now() + 1000);
  });

  it("draws the delay uniformly below the ceiling", async () => {
    const h = setup({ random: () => 0.999 });
    await h.start();
    h.latest().drop(4500);
    expect(h.client.getSnapshot().nextRetryAt! - h.clock.now()).toBe(499);
  });

  it("caps the ceiling at backoffMaxMs", async () => {
    const h = setup({ backoffMaxMs: 2_000 });
    await h.start();
    for (let i = 0; i < 8; i += 1) {
      h.latest().drop(1006);
      await h.untilRetry();
    }
    h.latest().drop(1006);
    expect(h.client.getSnapshot().nextRetryAt! - h.clock.now()).toBe(1_000);
  });

  it("starts the backoff over after a connection that stayed up", async () => {
    const h = setup();
    await h.start();
    for (let i = 0; i < 4; i += 1) {
      h.latest().drop(1006);
      await h.untilRetry();
      await h.accept();
    }
    await h.clock.advance(10_000);
    h.latest().push({ push: "ping" });
    h.latest().drop(1006);
    expect(h.client.getSnapshot().nextRetryAt! - h.clock.now()).toBe(250);
  });

  it("shows connecting for the first attempt and reconnecting after a failure", async () => {
    const h = setup();
    h.client.retain();
    expect(h.client.state).toBe("connecting");
    await flush();
    h.latest().drop(1006);
    expect(h.client.state).toBe("reconnecting");
    await h.clock.advance(250);
    expect(h.client.state).toBe("reconnecting");
  });

  it("retries with backoff when getToken fails", async () => {
    const h = setup();
    h.getToken.mockRejectedValueOnce(new Error("network down"));
    h.client.retain();
    await flush();
    expect(h.sockets).toHaveLength(0);
    expect(h.client.state).toBe("reconnecting");
    await h.clock.advance(250);
    expect(h.sockets).toHaveLength(1);
  });
});

describe("close codes", () => {
  it("1000 normal: stays offline, no reconnect", async () => {
    const h = setup();
    await h.start();
    h.latest().drop(1000, "bye");
    await h.clock.advance(120_000);
    expect(h.sockets).toHaveLength(1);
    expect(h.client.getSnapshot()).toMatchObject({ state: "offline", halted: "closed", lastClose: { code: 1000, reason: "bye" } });
  });

  it("4003 forbidden: stays offline, no reconnect", async () => {
    const h = setup();
    await h.start();
    h.latest().drop(4003);
    await h.clock.advance(120_000);
    expect(h.sockets).toHaveLength(1);
    expect(h.client.getSnapshot().halted).toBe("forbidden");
  });

  it("1001 going away: reconnects at once", async () => {
    const h = setup();
    await h.start();
    h.latest().drop(1001);
    await h.clock.advance(0);
    expect(h.sockets).toHaveLength(2);
  });

  it("1001 twice in a row: the second waits for a backoff", async () => {
    const h = setup();
    await h.start();
    h.latest().drop(1001);
    await h.clock.advance(0);
    h.latest().drop(1001);
    await h.clock.advance(0);
    expect(h.sockets).toHaveLength(2);
    await h.clock.advance(500);
    expect(h.sockets).toHaveLength(3);
  });

  it("4001 unauthorized: refreshes the token, then reconnects with it", async () => {
    const h = setup();
    await h.start();
    h.latest().drop(4001);
    await h.clock.advance(0);
    expect(h.getToken).toHaveBeenLastCalledWith({ forceRefresh: true, rejected: "token-1" });
    h.latest().open();
    expect(h.latest().frames[0]).toEqual({ id: 1, op: "connect", token: "token-2" });
  });

  it("4001 after each fresh token: gives up after maxAuthRetries", async () => {
    const h = setup({ maxAuthRetries: 2 });
    await h.start();
    for (let i = 0; i < 3; i += 1) {
      h.latest().drop(4001);
      if (i < 2) {
        await h.untilRetry();
        h.latest().open();
      }
    }
    expect(h.sockets).toHaveLength(3);
    expect(h.client.getSnapshot()).toMatchObject({ state: "offline", halted: "unauthorized" });
  });

  it("an unauthorized connect reply refreshes the token and retries", async () => {
    const h = setup();
    h.client.retain();
    await flush();
    h.latest().open();
    h.latest().fail(1, { code: "unauthorized", status: 401 });
    expect(h.latest().closedByClient?.code).toBe(4001);
    await h.clock.advance(0);
    expect(h.sockets).toHaveLength(2);
    expect(h.getToken).toHaveBeenLastCalledWith({ forceRefresh: true, rejected: "token-1" });
  });

  it.each([4008, 4009, 4500, 1006])("%i: reconnects after a backoff", async (code) => {
    const h = setup();
    await h.start();
    h.latest().drop(code);
    await h.clock.advance(0);
    expect(h.sockets).toHaveLength(1);
    await h.clock.advance(250);
    expect(h.sockets).toHaveLength(2);
  });

  it("a disconnect push with reconnect:false wins over the close code", async () => {
    const h = setup();
    await h.start();
    h.latest().push({ push: "disconnect", code: 4500, reason: "account deleted", reconnect: false });
    h.latest().drop(4500);
    await h.clock.advance(60_000);
    expect(h.sockets).toHaveLength(1);
    expect(h.client.getSnapshot().lastClose).toEqual({ code: 4500, reason: "account deleted" });
  });

  it("a disconnect push with reconnect:true reconnects even on a normal close", async () => {
    const h = setup();
    await h.start();
    h.latest().push({ push: "disconnect", code: 1001, reason: "draining", reconnect: true });
    h.latest().drop(1000);
    await h.clock.advance(0);
    expect(h.sockets).toHaveLength(2);
  });

  it("getToken resolving null means signed out: halts until reconnect()", async () => {
    const h = setup();
    h.getToken.mockResolvedValueOnce(null);
    h.client.retain();
    await flush();
    expect(h.sockets).toHaveLength(0);
    expect(h.client.getSnapshot()).toMatchObject({ state: "offline", halted: "signed_out" });

    h.client.reconnect();
    await h.accept();
    expect(h.client.getSnapshot()).toMatchObject({ state: "live", halted: null });
  });
});

describe("network status", () => {
  it("stays offline while navigator is offline, and connects on the online event", async () => {
    const h = setup();
    h.env.online = false;
    h.client.retain();
    await h.clock.advance(60_000);
    expect(h.sockets).toHaveLength(0);
    expect(h.client.state).toBe("offline");

    h.env.emit("online");
    await h.accept();
    expect(h.client.state).toBe("live");
  });

  it("closes the socket on the offline event and does not retry until online", async () => {
    const h = setup();
    await h.start();
    h.env.emit("offline");
    expect(h.sockets[0]!.closedByClient).not.toBeNull();
    expect(h.client.state).toBe("offline");
    await h.clock.advance(120_000);
    expect(h.sockets).toHaveLength(1);

    h.env.emit("online");
    await flush();
    expect(h.sockets).toHaveLength(2);
  });

  it("skips a pending backoff wait when the browser comes back online", async () => {
    const h = setup({ random: () => 0.99 });
    await h.start();
    for (let i = 0; i < 5; i += 1) {
      h.latest().drop(1006);
      await h.untilRetry();
    }
    h.latest().drop(1006);
    expect(h.client.getSnapshot().nextRetryAt! - h.clock.now()).toBeGreaterThan(10_000);
    h.env.emit("online");
    await flush();
    expect(h.sockets).toHaveLength(7);
  });
});

describe("holding the connection (retain/release)", () => {
  it("keeps one socket through release → retain in the same tick (StrictMode remount)", async () => {
    const h = setup();
    const release = h.client.retain();
    release();
    h.client.retain();
    await h.clock.advance(1_000);
    expect(h.sockets).toHaveLength(1);
    expect(h.sockets[0]!.closedByClient).toBeNull();
  });

  it("closes the socket once the last holder releases it", async () => {
    const h = setup();
    const a = h.client.retain();
    const b = h.client.retain();
    await h.accept();
    a();
    await h.clock.advance(0);
    expect(h.sockets[0]!.closedByClient).toBeNull();
    b();
    await h.clock.advance(0);
    expect(h.sockets[0]!.closedByClient).toEqual({ code: 1000, reason: "client stopped" });
    expect(h.client.state).toBe("offline");
    expect(h.env.listenerCount()).toBe(0);
  });

  it("releasing twice with the same handle counts once", async () => {
    const h = setup();
    const a = h.client.retain();
    h.client.retain();
    await h.accept();
    a();
    a();
    await h.clock.advance(0);
    expect(h.client.state).toBe("live");
  });

  it("starts afresh after a halt once released and retained again (sign out, sign in)", async () => {
    const h = setup();
    const release = h.client.retain();
    await h.accept();
    h.latest().drop(4003);
    release();
    await h.clock.advance(0);
    h.client.retain();
    await h.accept();
    expect(h.client.getSnapshot()).toMatchObject({ state: "live", halted: null });
  });

  it("a release forgets the halt: the next holder (signed in again) never sees the old session's 4003", async () => {
    // React runs a child's effects before its provider's: a component that
    // reacts to `halted` reads the snapshot before the provider's retain()
    // has run. A halt left over from the previous session would sign the new
    // one out again at once.
    const h = setup();
    const release = h.client.retain();
    await h.accept();
    h.latest().drop(4003);
    expect(h.client.getSnapshot().halted).toBe("forbidden");
    release();
    await h.clock.advance(0);
    expect(h.client.getSnapshot()).toMatchObject({ state: "offline", halted: null });
    h.client.retain();
    await h.accept();
    expect(h.client.getSnapshot()).toMatchObject({ state: "live", halted: null });
  });

  it("a StrictMode remount within the release delay keeps the halt (same session)", async () => {
    const h = setup({ releaseDelayMs: 50 });
    const release = h.client.retain();
    await h.accept();
    h.latest().drop(4003);
    release();
    h.client.retain();
    await h.clock.advance(100);
    expect(h.sockets).toHaveLength(1);
    expect(h.client.getSnapshot().halted).toBe("forbidden");
  });

  it("uses the closing code the client chose when it gives up a socket", async () => {
    const h = setup();
    await h.start();
    h.client.close();
    expect(h.sockets[0]!.closedByClient?.code).toBe(CloseCode.NORMAL);
    expect(() => h.client.retain()).toThrow(/closed/);
  });

  it("close(): state listeners are told, and read the client as closed then (not as released for a while)", async () => {
    const h = setup();
    await h.start();
    const seen: boolean[] = [];
    h.client.onStateChange(() => seen.push(h.client.closed));
    h.client.close();
    expect(seen).not.toEqual([]);
    expect(seen.every(Boolean)).toBe(true);
  });
});
