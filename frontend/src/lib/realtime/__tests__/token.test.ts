import { describe, expect, it } from "vitest";
import { flush, setup } from "./harness";

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

  it("stays connected when the refresh is refused (the hub closes with 4001 later)", async () => {
    const h = setup();
    const socket = await h.start();
    socket.push({ push: "expiring", in: 60 });
    await flush();
    socket.fail(socket.last("refresh").id as number, { code: "unauthorized" });
    expect(h.client.state).toBe("live");
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
