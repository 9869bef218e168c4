import { describe, expect, it } from "vitest";
import { CloseCode } from "../types";
import { flush, setup } from "./harness";

// CONNECT_RESULT.ping_interval = 25 s → dead after 2 × 25 s + 2 s grace of silence.

describe("liveness", () => {
  it("drops the socket and reconnects after two ping intervals of silence", async () => {
    const h = setup();
    const socket = await h.start();
    await h.clock.advance(52_000);
    expect(socket.closedByClient).toBeNull();
    await h.clock.advance(5_000);
    expect(socket.closedByClient?.code).toBe(CloseCode.CLIENT_TIMEOUT);
    expect(h.client.getSnapshot().lastClose?.code).toBe(CloseCode.CLIENT_TIMEOUT);
    expect(h.client.state).toBe("reconnecting");
  });

  it("stays up while frames keep arriving", async () => {
    const h = setup();
    const socket = await h.start();
    for (let i = 0; i < 20; i += 1) {
      await h.clock.advance(25_000);
      socket.push({ push: "ping" });
    }
    expect(socket.closedByClient).toBeNull();
    expect(socket.framesOf("pong")).toHaveLength(20);
  });

  it("judges by the wall clock when a throttled timer fires late", async () => {
    // A background tab: no tick for two minutes, then one tick.
    const h = setup();
    const socket = await h.start();
    h.clock.jump(120_000);
    await h.clock.advance(5_000);
    expect(socket.closedByClient?.code).toBe(CloseCode.CLIENT_TIMEOUT);
  });

  it("does not count missed ticks as silence when frames kept arriving", async () => {
    const h = setup();
    const socket = await h.start();
    for (let i = 0; i < 6; i += 1) {
      h.clock.jump(20_000);
      socket.push({ push: "ping" });
    }
    await h.clock.advance(5_000);
    expect(socket.closedByClient).toBeNull();
  });

  it("checks at once when the page becomes visible", async () => {
    const h = setup();
    const socket = await h.start();
    h.clock.jump(600_000);
    h.env.emit("visible");
    expect(socket.closedByClient?.code).toBe(CloseCode.CLIENT_TIMEOUT);
  });

  it("checks at once when the browser comes back online", async () => {
    const h = setup();
    const socket = await h.start();
    h.clock.jump(600_000);
    h.env.emit("online");
    expect(socket.closedByClient?.code).toBe(CloseCode.CLIENT_TIMEOUT);
  });

  it("reconnects on visible when the backoff wait ran out behind a throttled timer", async () => {
    const h = setup();
    const socket = await h.start();
    socket.drop(1006);
    h.clock.jump(60_000);
    h.env.emit("visible");
    await flush();
    expect(h.sockets).toHaveLength(2);
  });

  it("gives up a socket that never answers connect", async () => {
    const h = setup({ connectTimeoutMs: 10_000 });
    h.client.retain();
    await flush();
    h.latest().open();
    await h.clock.advance(15_000);
    expect(h.sockets[0]!.closedByClient?.code).toBe(CloseCode.CLIENT_TIMEOUT);
    expect(h.client.state).toBe("reconnecting");
  });

  it("uses the ping interval the hub announced", async () => {
    const h = setup();
    h.client.retain();
    const socket = await h.accept({ client: "c", user: { id: "u" }, ping_interval: 5, expires_in: 900 });
    await h.clock.advance(15_000);
    expect(socket.closedByClient?.code).toBe(CloseCode.CLIENT_TIMEOUT);
  });
});
