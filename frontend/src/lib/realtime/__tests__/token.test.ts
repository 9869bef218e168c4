import { describe, expect, it } from "vitest";
import { CONNECT_RESULT, flush, setup } from "./harness";

describe("token refresh", () => {
  it("on expiring, asks getToken for a fresh token and sends refresh", async () => {
    const h = setup();
    const socket = await h.start();
    socket.push({ push: "expiring", in: 60 });
    await flush();
    expect(h.getToken).toHaveBeenLastCalledWith({ forceRefresh: true, rejected: "token-1" });
    expect(socket.last("refresh")).toEqual({ id: 2, op: "refresh", token: "token-2" });
  });

  it("refreshes once for expiring pushes that arrive while a refresh is under way", async () => {
    const h = setup();
    const socket = await h.start();
    socket.push({ push: "expiring", in: 60 });
    socket.push({ push: "expiring", in: 59 });
    await flush();
    expect(socket.framesOf("refresh")).toHaveLength(1);
  });

  it("a refresh refused unauthorized ends the socket as a 4001 close does, and reconnects", async () => {
    const h = setup();
    const socket = await h.start();
    socket.push({ push: "expiring", in: 60 });
    await flush();
    socket.fail(socket.last("refresh").id as number, { code: "unauthorized" });
    expect(socket.closedByClient).toMatchObject({ code: 4001 });
    await h.untilRetry();
    const next = await h.accept();
    expect(next.last("connect").token).toMatch(/^token-/);
    expect(h.client.state).toBe("live");
  });

  it("a refresh refused forbidden (the new token is another user's): unanswered calls fail, a new socket connects at once", async () => {
    const h = setup();
    const socket = await h.start();
    const call = h.client.mutate("resources.create", { workspace_id: "w1" }).catch((e: unknown) => e);
    socket.push({ push: "expiring", in: 60 });
    await flush();
    socket.fail(socket.last("refresh").id as number, { code: "forbidden", status: 403 });
    expect(await call).toMatchObject({ code: "unavailable", local: true });
    expect(socket.closedByClient).not.toBeNull();
    await h.clock.advance(0);
    const next = await h.accept({ ...CONNECT_RESULT, user: { id: "user-2", display_name: "Bob" } });
    expect(h.getToken).toHaveBeenLastCalledWith({ forceRefresh: false }); // the session's current token, no other refresh
    expect(next.framesOf("rpc")).toHaveLength(0);
    expect(h.client.getSnapshot().user).toMatchObject({ id: "user-2" });
  });

  it("sends the refreshed token on the socket that replaced the one that asked for it", async () => {
    const h = setup();
    const first = await h.start();
    let release: (token: string) => void = () => {};
    h.getToken.mockImplementationOnce(() => new Promise<string>((resolve) => (release = resolve)));
    first.push({ push: "expiring", in: 60 });
    await flush();
    first.drop(1006); // meanwhile the socket is replaced; the new one connects with the old token
    h.getToken.mockResolvedValueOnce("token-1");
    await h.untilRetry();
    const second = await h.accept();
    expect(second.last("connect").token).toBe("token-1");
    release("token-fresh");
    await flush();
    expect(second.last("refresh")).toMatchObject({ op: "refresh", token: "token-fresh" });
  });

  it("restart(): unanswered calls fail and a new socket connects at once (another user signed in)", async () => {
    const h = setup();
    const socket = await h.start();
    const call = h.client.mutate("resources.create", { workspace_id: "w1" }).catch((e: unknown) => e);
    h.client.subscribe("user:user-1");
    h.client.restart();
    expect(await call).toMatchObject({ code: "unavailable" });
    expect(socket.closedByClient).not.toBeNull();
    await h.clock.advance(0);
    const next = await h.accept({ ...CONNECT_RESULT, user: { id: "user-2", display_name: "Bob" } });
    expect(next.framesOf("rpc")).toHaveLength(0);
    expect(next.framesOf("subscribe")).toHaveLength(1);
  });

  it("calls queued for one user do not go out on a socket that connects as another", async () => {
    const h = setup();
    const first = await h.start();
    first.drop(1006);
    const calls = ["w1", "w2", "w3"].map((w) => h.client.mutate("resources.create", { workspace_id: w }).catch((e: unknown) => e));
    await h.untilRetry();
    const next = await h.accept({ ...CONNECT_RESULT, user: { id: "user-2", display_name: "Bob" } });
    for (const call of calls) expect(await call).toMatchObject({ code: "unavailable", message: "Signed in as another user" });
    expect(next.framesOf("rpc")).toHaveLength(0);
  });

  it("restart(): calls held back by maxCallsInFlight fail without going out on the old socket", async () => {
    const h = setup({ maxCallsInFlight: 1 });
    const socket = await h.start();
    const calls = ["w1", "w2", "w3"].map((w) => h.client.mutate("resources.create", { workspace_id: w }).catch((e: unknown) => e));
    expect(socket.framesOf("rpc")).toHaveLength(1);
    h.client.restart();
    for (const call of calls) expect(await call).toMatchObject({ code: "unavailable" });
    expect(socket.framesOf("rpc")).toHaveLength(1);
  });

  it("a call made after restart() goes out on the new socket, whoever it connects as", async () => {
    const h = setup();
    await h.start();
    h.client.restart();
    const call = h.client.mutate("resources.create", { workspace_id: "w1" });
    await h.clock.advance(0);
    const next = await h.accept({ ...CONNECT_RESULT, user: { id: "user-2", display_name: "Bob" } });
    next.reply(next.last("rpc").id as number, { id: "r1" });
    await expect(call).resolves.toEqual({ id: "r1" });
  });

  it("signed out, then another user signs in in the same tab: their first calls go out", async () => {
    const h = setup();
    const release = h.client.retain();
    await h.accept();
    release();
    await h.clock.advance(0); // the last holder let go: the client stops
    expect(h.client.getSnapshot()).toMatchObject({ state: "offline", user: null });
    h.client.retain(); // the next session's page mounts
    const call = h.client.mutate("resources.create", { workspace_id: "w1" });
    const socket = await h.accept({ ...CONNECT_RESULT, user: { id: "user-2", display_name: "Bob" } });
    socket.reply(socket.last("rpc").id as number, { id: "r1" });
    await expect(call).resolves.toEqual({ id: "r1" });
  });

  it("halts as signed out when no token can be had any more", async () => {
    const h = setup();
    const socket = await h.start();
    h.getToken.mockResolvedValueOnce(null);
    socket.push({ push: "expiring", in: 60 });
    await flush();
    expect(socket.closedByClient).not.toBeNull();
    expect(h.client.getSnapshot()).toMatchObject({ state: "offline", halted: "signed_out" });
  });

  it("keeps the connection when getToken fails for a moment", async () => {
    const h = setup();
    const socket = await h.start();
    h.getToken.mockRejectedValueOnce(new Error("offline"));
    socket.push({ push: "expiring", in: 60 });
    await flush();
    expect(socket.framesOf("refresh")).toHaveLength(0);
    expect(h.client.state).toBe("live");
  });
});
