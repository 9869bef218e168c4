import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../../api/client";
import { resourcesApi } from "../../api/resources";
import type { RealtimeClient } from "../../realtime/client";
import { flush, setup } from "../../realtime/__tests__/harness";
import { HubError } from "../../errors";
import { QUEUED_FOR_MS, boardRpc } from "../rpc";
import { resourceFormSchema, toCreateBody } from "../schema";

/**
 * `boardRpc` against a recording realtime client: each call is the schema's
 * method with its params (REST `If-Match` as `expected_version`), mutations
 * through `mutate` with the long queued deadline. The `@ts-expect-error` lines
 * are checked by `tsc`: the calls are typed from the generated operations.
 */
function recorder() {
  const calls: { op: "rpc" | "mutate"; method: string; params: unknown; options: unknown }[] = [];
  const realtime = {
    rpc: vi.fn(async (method: string, params: unknown, options: unknown) => {
      calls.push({ op: "rpc", method, params, options });
      return { id: "r1" };
    }),
    mutate: vi.fn(async (method: string, params: unknown, options: unknown) => {
      calls.push({ op: "mutate", method, params, options });
      return { id: "r1" };
    }),
    fitsFrame: vi.fn(() => true),
  } as unknown as Pick<RealtimeClient, "mutate" | "rpc" | "fitsFrame">;
  return { calls, realtime };
}

describe("boardRpc", () => {
  it("sends each call as the schema's method with its params", async () => {
    const { calls, realtime } = recorder();
    const rpc = boardRpc(realtime);
    await rpc.get("w1", "r1", { includeDeleted: true });
    await rpc.create("w1", { kind: "task", title: "T" }, { idempotencyKey: "k1" });
    await rpc.update("w1", "r1", 3, { title: "U" });
    await rpc.delete("w1", "r1", 4);
    await rpc.restore("w1", "r1", 5);
    expect(calls.map((c) => [c.op, c.method, c.params])).toEqual([
      ["rpc", "resources.get", { workspace_id: "w1", resource_id: "r1", include_deleted: true }],
      ["mutate", "resources.create", { workspace_id: "w1", kind: "task", title: "T" }],
      ["mutate", "resources.update", { workspace_id: "w1", resource_id: "r1", expected_version: 3, title: "U" }],
      ["mutate", "resources.delete", { workspace_id: "w1", resource_id: "r1", expected_version: 4 }],
      ["mutate", "resources.restore", { workspace_id: "w1", resource_id: "r1", expected_version: 5 }],
    ]);
    expect(calls[1]!.options).toMatchObject({ timeoutMs: QUEUED_FOR_MS, idempotencyKey: "k1" });
    expect(calls[2]!.options).toMatchObject({ timeoutMs: QUEUED_FOR_MS });
  });

  it("types the methods it calls from the schema (tsc)", () => {
    const { realtime } = recorder();
    const typed = (client: Pick<RealtimeClient, "mutate" | "rpc">) => {
      // @ts-expect-error a param the operation does not have
      void client.mutate("resources.update", { workspace_id: "w1", resource_id: "r1", expected_version: 1, no_such_field: 1 });
      // @ts-expect-error a wrong type for a param
      void client.rpc("resources.get", { workspace_id: "w1", resource_id: 1 });
      // @ts-expect-error a required path param missing
      void client.mutate("resources.delete", { workspace_id: "w1", expected_version: 1 });
    };
    expect(typeof typed).toBe("function");
    expect(realtime.rpc).not.toHaveBeenCalled();
  });
});

/** The hub's REST end: records each request and answers with `answer(request)`. */
function restHub(answer: (method: string, url: string, body: Record<string, unknown>) => [number, unknown]) {
  const requests: { method: string; url: string; headers: Headers; body: Record<string, unknown> }[] = [];
  const fetch = vi.fn(async (input: string | URL | Request, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(new URL(String(input), "http://hub.test"), init);
    const body = (await request.clone().json()) as Record<string, unknown>;
    requests.push({ method: request.method, url: new URL(request.url).pathname, headers: request.headers, body });
    const [status, reply] = answer(request.method, request.url, body);
    return new Response(JSON.stringify(reply), { status, headers: { "content-type": "application/json" } });
  });
  const api = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, tokens: { getToken: async () => "tok" } });
  return { rest: resourcesApi(api), requests };
}

describe("boardRpc: a change too large for a socket frame", () => {
  const long = "x".repeat(70_000); // the form and the hub take 100,000 characters; a frame 64 KiB
  const resource = { id: "r1", workspace_id: "w1", version: 4, title: "Spec", body: long };

  it("a create the form accepts goes over REST with the same idempotency key; small ones stay on the socket", async () => {
    const h = setup();
    const socket = await h.start();
    const { rest, requests } = restHub(() => [201, resource]);
    const rpc = boardRpc(h.client, rest);
    const values = resourceFormSchema.parse({ title: "Spec", kind: "task", status: "open", tags: "", body: long });

    await expect(rpc.create("w1", toCreateBody(values), { idempotencyKey: "create-1" })).resolves.toEqual(resource);
    expect(socket.framesOf("rpc")).toHaveLength(0);
    expect(requests.map((r) => [r.method, r.url, r.headers.get("Idempotency-Key"), (r.body.body as string).length])).toEqual([
      ["POST", "/api/v1/workspaces/w1/resources", "create-1", 70_000],
    ]);

    const small = rpc.create("w1", { kind: "task", title: "Short" }, { idempotencyKey: "create-2" });
    await flush();
    const frame = socket.last("rpc");
    expect(frame).toMatchObject({ method: "resources.create", idempotency_key: "create-2" });
    socket.reply(frame.id!, { ...resource, body: "" });
    await small;
    expect(requests).toHaveLength(1);
  });

  it("an update goes over REST with its version as If-Match and the client's key; a stale version is still a conflict", async () => {
    const h = setup();
    const socket = await h.start();
    const { rest, requests } = restHub((_method, _url, body) =>
      body.title === "stale" ? [412, { status: 412, code: "precondition_failed", title: "Precondition failed" }] : [200, resource],
    );
    const rpc = boardRpc(h.client, rest);

    await expect(rpc.update("w1", "r1", 3, { body: long })).resolves.toEqual(resource);
    const error = await rpc.update("w1", "r1", 3, { title: "stale", body: "漢".repeat(25_000) }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "precondition_failed" });

    expect(socket.framesOf("rpc")).toHaveLength(0);
    expect(requests.map((r) => [r.method, r.url, r.headers.get("If-Match")])).toEqual([
      ["PATCH", "/api/v1/workspaces/w1/resources/r1", '"3"'],
      ["PATCH", "/api/v1/workspaces/w1/resources/r1", '"3"'],
    ]);
    const keys = requests.map((r) => r.headers.get("Idempotency-Key"));
    expect(keys[0]).toMatch(/^key-/); // the key the realtime client gave the refused call
    expect(keys[1]).not.toBe(keys[0]);
  });

  it("tells whether a create or update fits a frame (one that does not cannot wait in the outbox)", async () => {
    const h = setup();
    const rpc = boardRpc(h.client);
    expect(rpc.fits.create("w1", { kind: "task", title: "T", body: "x".repeat(60_000) }, { idempotencyKey: "k1" })).toBe(true);
    expect(rpc.fits.create("w1", { kind: "task", title: "T", body: long }, { idempotencyKey: "k1" })).toBe(false);
    expect(rpc.fits.update("w1", "r1", 3, { body: "x".repeat(60_000) })).toBe(true);
    expect(rpc.fits.update("w1", "r1", 3, { body: "漢".repeat(25_000) })).toBe(false); // 75,000 bytes in UTF-8
    // What `fits` says is what the client does: the one it calls too large is refused as too_large.
    await expect(rpc.update("w1", "r1", 3, { body: "漢".repeat(25_000) })).rejects.toMatchObject({ code: "too_large", local: true });
  });

  it("a delete the hub made but could not answer (too_large, details.applied) is done; any other refusal comes through", async () => {
    const { realtime } = recorder();
    const applied = HubError.fromFrame({ code: "too_large", status: 413, message: "the change was applied", details: { applied: true } });
    vi.mocked(realtime.mutate).mockRejectedValueOnce(applied);
    await expect(boardRpc(realtime).delete("w1", "r1", 4)).resolves.toBeUndefined();
    const refused = HubError.fromFrame({ code: "too_large", status: 413, message: "ask for less" });
    vi.mocked(realtime.mutate).mockRejectedValueOnce(refused);
    await expect(boardRpc(realtime).delete("w1", "r1", 4)).rejects.toBe(refused);
    expect(realtime.mutate).toHaveBeenCalledTimes(2);
  });

  it("without a REST fallback the client's too_large comes through", async () => {
    const h = setup();
    await h.start();
    const error = await boardRpc(h.client).update("w1", "r1", 3, { body: long }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "too_large", local: true });
  });
});
