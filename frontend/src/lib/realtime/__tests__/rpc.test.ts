import { describe, expect, it } from "vitest";
import { HubError, fieldErrorMap } from "../../errors";
import { type FakeSocket, type Frame, flush, setup } from "./harness";

describe("rpc", () => {
  it("sends an rpc frame and resolves with its result", async () => {
    const h = setup();
    const socket = await h.start();
    const reply = h.client.rpc("workspaces.list", { limit: 10 });
    expect(socket.last("rpc")).toEqual({ id: 2, op: "rpc", method: "workspaces.list", params: { limit: 10 } });
    socket.reply(2, { items: [] });
    await expect(reply).resolves.toEqual({ items: [] });
  });

  it("rejects with a HubError carrying code, status and details", async () => {
    const h = setup();
    const socket = await h.start();
    const reply = h.client.rpc("workspaces.get", { workspace_id: "nope" });
    socket.fail(2, { code: "not_found", message: "No such workspace", status: 404, details: { id: "nope" } });
    const error = await reply.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect(error).toMatchObject({ code: "not_found", message: "No such workspace", status: 404, details: { id: "nope" }, local: false });
  });

  it("maps validation_failed field errors to form fields", async () => {
    const h = setup();
    const socket = await h.start();
    const reply = h.client.mutate("auth.register", {});
    socket.fail(2, {
      code: "validation_failed",
      status: 422,
      details: {
        errors: [
          { loc: ["params", "email"], msg: "not an email", type: "value_error" },
          { loc: ["params", "profile", "name"], msg: "too short", type: "string_too_short" },
        ],
      },
    });
    const error = (await reply.catch((e: unknown) => e)) as HubError;
    expect(fieldErrorMap(error)).toEqual({ email: "not an email", "profile.name": "too short" });
  });

  it("queues calls made before the connection is live and sends them once it is", async () => {
    const h = setup();
    const reply = h.client.rpc("users.me");
    const socket = await h.start();
    expect(socket.framesOf("rpc")).toHaveLength(1);
    socket.reply(socket.last("rpc").id as number, { id: "user-1" });
    await expect(reply).resolves.toEqual({ id: "user-1" });
  });

  it("times out with a local timeout error and ignores the late reply", async () => {
    const h = setup({ rpcTimeoutMs: 3_000 });
    const socket = await h.start();
    const reply = h.client.rpc("activity.list", { workspace_id: "w1" });
    const outcome = reply.catch((e: unknown) => e);
    await h.clock.advance(3_000);
    expect(await outcome).toMatchObject({ code: "timeout", local: true, status: 504 });
    socket.reply(2, { late: true });
    expect(h.client.state).toBe("live");
  });

  it("honours a per-call timeout", async () => {
    const h = setup();
    await h.start();
    const outcome = h.client.rpc("activity.list", { workspace_id: "w1" }, { timeoutMs: 50 }).catch((e: unknown) => e);
    await h.clock.advance(50);
    expect(await outcome).toMatchObject({ code: "timeout" });
  });

  it("rejects when the signal aborts", async () => {
    const h = setup();
    await h.start();
    const controller = new AbortController();
    const outcome = h.client.rpc("activity.list", { workspace_id: "w1" }, { signal: controller.signal }).catch((e: unknown) => e);
    controller.abort();
    expect(await outcome).toMatchObject({ name: "AbortError" });
  });

  it("rejects at once while the connection is halted", async () => {
    const h = setup();
    await h.start();
    h.latest().drop(4003);
    await expect(h.client.rpc("users.me")).rejects.toMatchObject({ code: "unavailable", local: true });
  });

  it("fails pending calls when the connection halts", async () => {
    const h = setup();
    await h.start();
    const outcome = h.client.rpc("users.me").catch((e: unknown) => e);
    h.latest().drop(1000);
    expect(await outcome).toMatchObject({ code: "unavailable" });
  });
});

describe("outbox (mutations survive reconnects)", () => {
  it("gives every mutation an idempotency key", async () => {
    const h = setup();
    const socket = await h.start();
    void h.client.mutate("resources.create", { workspace_id: "w1", title: "a" });
    void h.client.mutate("resources.create", { workspace_id: "w1", title: "b" });
    expect(socket.framesOf("rpc").map((f) => f.idempotency_key)).toEqual(["key-1", "key-2"]);
  });

  it("gives reads no idempotency key", async () => {
    const h = setup();
    const socket = await h.start();
    void h.client.rpc("resources.list", { workspace_id: "w1" });
    expect(socket.last("rpc")).not.toHaveProperty("idempotency_key");
  });

  it("re-sends an unanswered mutation after reconnecting, with the same key and a new id", async () => {
    const h = setup();
    const first = await h.start();
    const reply = h.client.mutate("resources.create", { workspace_id: "w1", title: "a" });
    first.drop(1006);
    await h.untilRetry();
    const second = await h.accept();
    const resent = second.last("rpc");
    expect(resent).toEqual({ id: 2, op: "rpc", method: "resources.create", params: { workspace_id: "w1", title: "a" }, idempotency_key: "key-1" });
    second.reply(2, { id: "r1" });
    await expect(reply).resolves.toEqual({ id: "r1" });
  });

  it("sends each queued mutation once, in call order, after the connect reply", async () => {
    const h = setup();
    void h.client.mutate("resources.create", { workspace_id: "w1", title: "1" });
    void h.client.mutate("resources.create", { workspace_id: "w1", title: "2" });
    const socket = await h.start();
    expect(socket.frames.map((f) => [f.op, f.idempotency_key])).toEqual([
      ["connect", undefined],
      ["rpc", "key-1"],
      ["rpc", "key-2"],
    ]);
  });

  it("reuses a caller-given idempotency key", async () => {
    const h = setup();
    const socket = await h.start();
    void h.client.rpc("resources.update", { workspace_id: "w1", resource_id: "r1", expected_version: 1 }, { idempotencyKey: "retry-me" });
    expect(socket.last("rpc").idempotency_key).toBe("retry-me");
  });

  it("tells the caller the key of a mutation that timed out, so it can retry safely", async () => {
    const h = setup({ mutationTimeoutMs: 5_000 });
    await h.start();
    const outcome = h.client.mutate("resources.create", { workspace_id: "w1" }).catch((e: unknown) => e);
    await h.clock.advance(5_000);
    expect(await outcome).toMatchObject({ code: "timeout", details: { idempotency_key: "key-1" } });
  });

  it("re-sends an unanswered read after reconnecting", async () => {
    const h = setup();
    const first = await h.start();
    const reply = h.client.presence("workspace:1");
    first.drop(1006);
    await h.untilRetry();
    const second = await h.accept();
    second.reply(second.last("presence").id as number, { members: [] });
    await expect(reply).resolves.toEqual({ members: [] });
  });

  it("does not re-send a publish (it has no key): it fails as unavailable", async () => {
    const h = setup();
    const first = await h.start();
    const outcome = h.client.publish("cursor:1", { x: 1 }).catch((e: unknown) => e);
    first.drop(1006);
    expect(await outcome).toMatchObject({ code: "unavailable", local: true });
    await h.untilRetry();
    const second = await h.accept();
    expect(second.framesOf("publish")).toHaveLength(0);
  });

  it("does not re-send a mutation the hub already answered", async () => {
    const h = setup();
    const first = await h.start();
    const reply = h.client.mutate("resources.create", { workspace_id: "w1" });
    first.reply(2, { ok: true });
    await reply;
    first.drop(1006);
    await h.untilRetry();
    const second = await h.accept();
    expect(second.framesOf("rpc")).toHaveLength(0);
  });

  it("keeps the mutation queued while offline, until its deadline", async () => {
    const h = setup({ mutationTimeoutMs: 20_000 });
    await h.start();
    const outcome = h.client.mutate("resources.create", { workspace_id: "w1" }).catch((e: unknown) => e);
    h.env.emit("offline");
    await h.clock.advance(19_000);
    h.env.emit("online");
    const socket = await h.accept();
    expect(socket.last("rpc").idempotency_key).toBe("key-1");
    await h.clock.advance(1_000);
    expect(await outcome).toMatchObject({ code: "timeout" });
    await flush();
  });
});

describe("outbox (refused for a while, in flight)", () => {
  /** Answer every rpc frame sent since the last look with `answer(frame)`. */
  function answerNew(socket: FakeSocket, seen: Set<number>, answer: (frame: Frame) => void) {
    for (const frame of socket.framesOf("rpc")) {
      if (seen.has(frame.id as number)) continue;
      seen.add(frame.id as number);
      answer(frame);
    }
  }

  it("sends queued calls at most 24 at a time, the next ones as replies come", async () => {
    const h = setup();
    h.client.retain();
    const calls = Array.from({ length: 70 }, (_, i) => h.client.mutate("resources.create", { workspace_id: "w1", title: `${i}` }));
    const socket = await h.accept();
    expect(socket.framesOf("rpc")).toHaveLength(24);
    const seen = new Set<number>();
    for (let round = 0; round < 3; round += 1) {
      answerNew(socket, seen, (f) => socket.reply(f.id as number, { key: f.idempotency_key }));
      await flush();
    }
    expect(socket.framesOf("rpc").map((f) => f.idempotency_key)).toEqual(Array.from({ length: 70 }, (_, i) => `key-${i + 1}`));
    expect(await Promise.all(calls)).toHaveLength(70);
  });

  it("a read does not wait behind mutations that fill the flight: reads have places of their own", async () => {
    const h = setup();
    const socket = await h.start();
    for (let i = 0; i < 40; i += 1) void h.client.mutate("resources.create", { workspace_id: "w1", title: `${i}` });
    expect(socket.framesOf("rpc")).toHaveLength(24); // slow: none answered yet
    void h.client.presence("workspace:w1");
    void h.client.history("workspace:w1", { limit: 10 });
    void h.client.rpc("resources.list", { workspace_id: "w1" });
    expect(socket.framesOf("presence")).toHaveLength(1);
    expect(socket.framesOf("history")).toHaveLength(1);
    expect(socket.framesOf("rpc").filter((f) => f.method === "resources.list")).toHaveLength(1);
    expect(socket.framesOf("rpc").filter((f) => f.method === "resources.create")).toHaveLength(24);
  });

  it("a refused mutation goes out again before the mutations made after it", async () => {
    const h = setup();
    const socket = await h.start();
    void h.client.mutate("resources.create", { workspace_id: "w1", title: "first" });
    socket.fail(socket.last("rpc").id as number, { code: "rate_limited", status: 429, details: { retry_after: 1 } });
    void h.client.mutate("resources.create", { workspace_id: "w1", title: "second" });
    void h.client.rpc("resources.list", { workspace_id: "w1" }); // a read need not wait
    const sent = () => socket.framesOf("rpc").map((f) => (f.params as { title?: string }).title ?? f.method);
    expect(sent()).toEqual(["first", "resources.list"]);
    await h.clock.advance(1_000);
    expect(sent()).toEqual(["first", "resources.list", "first", "second"]);
  });

  const target = (f: Frame) => {
    const p = f.params as { resource_id?: string; title?: string };
    return p.resource_id ?? p.title ?? String(f.method);
  };

  it.each([
    ["forbidden", 403],
    ["conflict", 409],
    ["validation_failed", 422],
  ])("a mutation refused %s settles alone, with its error: those after it go and are answered", async (code, status) => {
    const h = setup();
    h.client.retain();
    const first = h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r1" }).catch((e: unknown) => e);
    const later = [h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r2" }), h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r1" })];
    const socket = await h.accept();
    const [r1, r2, r1Again] = socket.framesOf("rpc");
    socket.fail(r1!.id as number, { code, status, message: "no" });
    expect(await first).toMatchObject({ code, status });
    socket.reply(r2!.id as number, { id: "r2" });
    socket.reply(r1Again!.id as number, { id: "r1" });
    await expect(Promise.all(later)).resolves.toEqual([{ id: "r2" }, { id: "r1" }]);
    expect(socket.framesOf("rpc")).toHaveLength(3);
  });

  it("a mutation refused busy (its worker's mailbox full: work not started) holds back only later changes of the same resource (or, for a create, workspace)", async () => {
    const h = setup({ backoffBaseMs: 10_000, backoffMaxMs: 10_000, random: () => 0.5 });
    const socket = await h.start();
    const busy = { code: "unavailable", status: 503, message: "the worker is busy; retry shortly", details: { reason: "busy", retry_after: 1 } };
    void h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r1", title: "one" });
    void h.client.mutate("resources.create", { workspace_id: "w1", title: "first" });
    socket.fail(socket.framesOf("rpc")[0]!.id as number, busy);
    socket.fail(socket.framesOf("rpc")[1]!.id as number, busy);
    void h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r1", title: "two" });
    void h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r2" });
    void h.client.mutate("resources.create", { workspace_id: "w1", title: "second" });
    void h.client.mutate("resources.create", { workspace_id: "w2", title: "elsewhere" });
    // Other resources and other workspaces go now; r1's second change and w1's second create wait for the first.
    expect(socket.framesOf("rpc").map(target)).toEqual(["r1", "first", "r2", "elsewhere"]);
    await h.clock.advance(6_000); // retry_after, then a backoff step (here 5 s)
    expect(socket.framesOf("rpc").map(target)).toEqual(["r1", "first", "r2", "elsewhere", "r1", "r1", "first", "second"]);
    expect(socket.framesOf("rpc").filter((f) => target(f) === "r1").map((f) => (f.params as { title: string }).title)).toEqual(["one", "one", "two"]);
  });

  it.each([
    ["unavailable (no worker, the bus or the database down)", { code: "unavailable", status: 503, message: "no worker is serving resources.update", details: { retry_after: 1 } }],
    ["timeout", { code: "timeout", status: 504, message: "resources.update did not answer within 10s" }],
  ])("a mutation refused %s holds back every later one: nothing says it is about its resource alone", async (_, refusal) => {
    const h = setup({ backoffBaseMs: 2_000, backoffMaxMs: 2_000, random: () => 0.5 });
    const socket = await h.start();
    void h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r1" });
    socket.fail(socket.last("rpc").id as number, refusal);
    void h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r2" });
    void h.client.mutate("resources.create", { workspace_id: "w2", title: "elsewhere" });
    expect(socket.framesOf("rpc").map(target)).toEqual(["r1"]);
    await h.clock.advance("details" in refusal ? 1_999 : 999); // retry_after (if any), then a backoff step (here 1 s)
    expect(socket.framesOf("rpc").map(target)).toEqual(["r1"]);
    await h.clock.advance(1);
    expect(socket.framesOf("rpc").map(target)).toEqual(["r1", "r1", "r2", "elsewhere"]);
  });

  it("the retry after such a refusal is jittered on top of retry_after, so tabs refused together do not come back together", async () => {
    const delays: number[] = [];
    for (const draw of [0.1, 0.9]) {
      const h = setup({ backoffBaseMs: 2_000, backoffMaxMs: 2_000, random: () => draw });
      const socket = await h.start();
      void h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r1" });
      socket.fail(socket.last("rpc").id as number, { code: "unavailable", status: 503, message: "down", details: { retry_after: 1 } });
      let waited = 0;
      while (socket.framesOf("rpc").length < 2 && waited < 10_000) {
        await h.clock.advance(100);
        waited += 100;
      }
      delays.push(waited);
    }
    expect(delays).toEqual([1_200, 2_800]); // retry_after (1 s), then 0.1 or 0.9 of a 2 s backoff step
  });

  it("a rate-limited mutation holds back every later one: the limit is the connection's", async () => {
    const h = setup();
    const socket = await h.start();
    void h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r1" });
    socket.fail(socket.last("rpc").id as number, { code: "rate_limited", status: 429, details: { retry_after: 1 } });
    void h.client.mutate("resources.update", { workspace_id: "w2", resource_id: "r2" });
    expect(socket.framesOf("rpc").map(target)).toEqual(["r1"]);
    await h.clock.advance(1_000);
    expect(socket.framesOf("rpc").map(target)).toEqual(["r1", "r1", "r2"]);
  });

  it.each([
    ["rate_limited", 429, { retry_after: 1 }],
    ["unavailable", 503, {}],
    ["timeout", 504, {}],
  ])("sends a mutation refused %s again with the same idempotency key", async (code, status, details) => {
    const h = setup();
    const socket = await h.start();
    const reply = h.client.mutate("resources.create", { workspace_id: "w1" });
    const first = socket.last("rpc");
    socket.fail(first.id as number, { code, status, details });
    await h.clock.advance(1_000);
    const again = socket.framesOf("rpc");
    expect(again).toHaveLength(2);
    expect(again[1]).toMatchObject({ idempotency_key: first.idempotency_key });
    expect(again[1]!.id).not.toBe(first.id);
    socket.reply(again[1]!.id as number, { id: "r1" });
    await expect(reply).resolves.toEqual({ id: "r1" });
  });

  it("waits retry_after before sending a rate-limited mutation again", async () => {
    const h = setup();
    const socket = await h.start();
    void h.client.mutate("resources.create", { workspace_id: "w1" });
    socket.fail(socket.last("rpc").id as number, { code: "rate_limited", status: 429, details: { retry_after: 2.5 } });
    await h.clock.advance(2_499);
    expect(socket.framesOf("rpc")).toHaveLength(1);
    await h.clock.advance(1);
    expect(socket.framesOf("rpc")).toHaveLength(2);
  });

  it("offline edits are all applied after the reconnect, though the hub refused some for a while", async () => {
    const h = setup({ mutationTimeoutMs: 86_400_000 });
    h.client.retain();
    const outcomes: string[] = [];
    const calls = Array.from({ length: 70 }, (_, i) =>
      h.client.mutate("resources.update", { workspace_id: "w1", resource_id: `r${i}` }).then(
        () => outcomes.push("ok"),
        (e: { code: string }) => outcomes.push(e.code),
      ),
    );
    const socket = await h.accept();
    // The hub is busy: it refuses every other call for a while, then takes all.
    const seen = new Set<number>();
    let busy = true;
    const applied = new Set<unknown>();
    for (let round = 0; round < 40 && outcomes.length < 70; round += 1) {
      answerNew(socket, seen, (f) => {
        if (busy && (f.id as number) % 2 === 0) socket.fail(f.id as number, { code: "rate_limited", status: 429, details: { retry_after: 1 } });
        else {
          applied.add(f.idempotency_key);
          socket.reply(f.id as number, {});
        }
      });
      if (round === 5) busy = false;
      await h.clock.advance(1_000);
    }
    await Promise.all(calls);
    expect(outcomes).toEqual(Array.from({ length: 70 }, () => "ok"));
    expect(applied.size).toBe(70);
  });

  it("does not send a refused read again: its caller decides (a query retries)", async () => {
    const h = setup();
    const socket = await h.start();
    const read = h.client.rpc("resources.list", { workspace_id: "w1" }).catch((e: unknown) => e);
    socket.fail(socket.last("rpc").id as number, { code: "unavailable", status: 503 });
    expect(await read).toMatchObject({ code: "unavailable" });
    await h.clock.advance(60_000);
    expect(socket.framesOf("rpc")).toHaveLength(1);
  });

  it("gives up on a mutation still refused at its deadline, telling its key", async () => {
    const h = setup({ mutationTimeoutMs: 5_000 });
    const socket = await h.start();
    const outcome = h.client.mutate("resources.create", { workspace_id: "w1" }).catch((e: unknown) => e);
    const seen = new Set<number>();
    for (let i = 0; i < 10; i += 1) {
      answerNew(socket, seen, (f) => socket.fail(f.id as number, { code: "unavailable", status: 503 }));
      await h.clock.advance(500);
    }
    expect(await outcome).toMatchObject({ code: "timeout", details: { idempotency_key: "key-1" } });
    const sent = socket.framesOf("rpc").length;
    await h.clock.advance(60_000);
    expect(socket.framesOf("rpc")).toHaveLength(sent);
  });
});

describe("history", () => {
  it("sends since and limit", async () => {
    const h = setup();
    const socket = await h.start();
    void h.client.history("workspace:1", { since: { offset: 5, epoch: "e1" }, limit: 50 });
    expect(socket.last("history")).toEqual({ id: 2, op: "history", channel: "workspace:1", since: { offset: 5, epoch: "e1" }, limit: 50 });
  });
});
