import { describe, expect, it, vi } from "vitest";
import type { RealtimeClient } from "../../realtime/client";
import { QUEUED_FOR_MS, boardRpc } from "../rpc";

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
  } as unknown as Pick<RealtimeClient, "mutate" | "rpc">;
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
