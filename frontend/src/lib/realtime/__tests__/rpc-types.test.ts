import { describe, expect, expectTypeOf, it } from "vitest";
import type { components } from "../../api/schema";
import type { RpcMethod, RpcParams, RpcResult } from "../rpc-types";
import { setup } from "./harness";

type Schemas = components["schemas"];

/**
 * `rpc(method, params)` is typed from the generated REST operations: the
 * method is an operation id, the params are its path, query and body fields
 * (plus `expected_version` where REST takes `If-Match`), the result its
 * success body. The type checks below fail `tsc`, not the run.
 */
describe("typed rpc", () => {
  it("derives params and results from the schema's operations", () => {
    expectTypeOf<"resources.update">().toExtend<RpcMethod>();
    expectTypeOf<RpcResult<"resources.get">>().toEqualTypeOf<Schemas["ResourcePublic"]>();
    expectTypeOf<RpcResult<"workspaces.list">>().toEqualTypeOf<Schemas["WorkspacePage"]>();
    expectTypeOf<RpcResult<"members.add">>().toEqualTypeOf<Schemas["MemberAdded"]>();
    expectTypeOf<RpcResult<"workspaces.delete">>().toEqualTypeOf<void>();
    expectTypeOf<RpcParams<"resources.update">>().toHaveProperty("expected_version").toEqualTypeOf<number | undefined>();
    expectTypeOf<RpcParams<"resources.update">>().toHaveProperty("workspace_id").toEqualTypeOf<string>();
    expectTypeOf<RpcParams<"resources.list">>().toHaveProperty("tag").toEqualTypeOf<string[] | null | undefined>();
    expectTypeOf<RpcParams<"resources.create">>().toHaveProperty("title");
  });

  it("sends the typed call as it is, and the reply is typed without a cast", async () => {
    const h = setup();
    const socket = await h.start();
    const reply = h.client.mutate("resources.update", { workspace_id: "w1", resource_id: "r1", expected_version: 3, title: "x" });
    expect(socket.last("rpc")).toMatchObject({
      method: "resources.update",
      params: { workspace_id: "w1", resource_id: "r1", expected_version: 3, title: "x" },
      idempotency_key: "key-1",
    });
    socket.reply(socket.last("rpc").id as number, { id: "r1", version: 4 });
    const resource = await reply;
    expectTypeOf(resource).toEqualTypeOf<Schemas["ResourcePublic"]>();
    expect(resource.version).toBe(4);
  });

  it("refuses wrong params and unknown fields of a schema method at compile time", () => {
    const h = setup();
    const calls = () => {
      // @ts-expect-error the path parameter is workspace_id, not id
      void h.client.rpc("workspaces.get", { id: "w1" });
      // @ts-expect-error a required path parameter is missing
      void h.client.rpc("resources.get", { resource_id: "r1" });
      // @ts-expect-error title is a string
      void h.client.mutate("resources.create", { workspace_id: "w1", title: 3 });
      // A method the schema does not name stays callable, untyped.
      void h.client.rpc<{ ok: boolean }>("service.echo", { anything: 1 });
    };
    expect(typeof calls).toBe("function");
  });
});
