import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../client";
import { etag, isStaleVersion, listQueryString, resourcesApi, workspaceReadsApi } from "../resources";
import { HubError } from "../../errors";

type Call = { url: string; init: RequestInit };

function fakeFetch(...responses: Array<[number, unknown]>) {
  const calls: Call[] = [];
  const queue = [...responses];
  const fetch = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    const next = queue.shift();
    if (!next) throw new TypeError("Failed to fetch");
    const [status, body] = next;
    return new Response(body === undefined ? null : JSON.stringify(body), { status });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls };
}

/** The request's headers by their usual spelling (`If-Match`); on the wire their case does not matter. */
const headers = (call: Call | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  new Headers(call?.init.headers).forEach((value, name) => {
    out[name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase())] = value;
  });
  return out;
};
const tokens = { getToken: async () => "tok" };
const WS = "w1";
const R = { id: "r1", version: 3, title: "x" };

function setup(...responses: Array<[number, unknown]>) {
  const { fetch, calls } = fakeFetch(...responses);
  let n = 0;
  const api = resourcesApi(new ApiClient({ fetch, tokens }), () => `key-${++n}`);
  return { api, calls };
}

describe("resources API", () => {
  it("lists with filters, search, sort and repeated tags", async () => {
    const { api, calls } = setup([200, { items: [], next_cursor: null }]);
    await api.list(WS, { status: "open", q: "run fast", tag: ["a", "b"], sort: "title", order: "asc", kind: null });
    expect(calls[0]!.url).toBe("/api/v1/workspaces/w1/resources?status=open&q=run+fast&tag=a&tag=b&sort=title&order=asc");
    expect(calls[0]!.init.method).toBe("GET");
    expect(headers(calls[0]).Authorization).toBe("Bearer tok");
  });

  it("listAll follows next_cursor", async () => {
    const { api, calls } = setup([200, { items: [R], next_cursor: "c2" }], [200, { items: [{ ...R, id: "r2" }], next_cursor: null }]);
    const all = await api.listAll(WS, { sort: "updated_at" });
    expect(all.items.map((r) => r.id)).toEqual(["r1", "r2"]);
    expect(all.truncated).toBe(false);
    expect(calls[1]!.url).toContain("cursor=c2");
    expect(calls[1]!.url).toContain("limit=100");
  });

  it("creates with an Idempotency-Key, and reuses a given one", async () => {
    const { api, calls } = setup([201, R], [201, R]);
    await api.create(WS, { kind: "task", title: "x" });
    await api.create(WS, { kind: "task", title: "x" }, { idempotencyKey: "mine" });
    expect(calls[0]!.init.method).toBe("POST");
    expect(calls[0]!.url).toBe("/api/v1/workspaces/w1/resources");
    expect(headers(calls[0])["Idempotency-Key"]).toBe("key-1");
    expect(headers(calls[1])["Idempotency-Key"]).toBe("mine");
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ kind: "task", title: "x" });
  });

  it("updates with If-Match: the quoted version, the patch as the body", async () => {
    const { api, calls } = setup([200, { ...R, version: 4 }]);
    const saved = await api.update(WS, "r1", 3, { status: "done" });
    expect(saved.version).toBe(4);
    expect(calls[0]!.init.method).toBe("PATCH");
    expect(calls[0]!.url).toBe("/api/v1/workspaces/w1/resources/r1");
    expect(headers(calls[0])["If-Match"]).toBe('"3"');
    expect(headers(calls[0])["Idempotency-Key"]).toBeTruthy();
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ status: "done" });
  });

  it("a 412 is a stale version", async () => {
    const { api } = setup([412, { code: "precondition_failed", status: 412, title: "Precondition failed", detail: "stale" }]);
    const error = await api.update(WS, "r1", 1, { title: "y" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect(isStaleVersion(error)).toBe(true);
    expect(isStaleVersion(new HubError({ code: "conflict", message: "", details: { reason: "stale_version" } }))).toBe(true);
    expect(isStaleVersion(new HubError({ code: "conflict", message: "" }))).toBe(false);
  });

  it("soft and hard deletes and restores send If-Match", async () => {
    const { api, calls } = setup([204, undefined], [204, undefined], [200, R]);
    await api.delete(WS, "r1", 3);
    await api.delete(WS, "r1", 4, { hard: true });
    await api.restore(WS, "r1", 5);
    expect(calls.map((c) => [c.init.method, c.url, headers(c)["If-Match"]])).toEqual([
      ["DELETE", "/api/v1/workspaces/w1/resources/r1", '"3"'],
      ["DELETE", "/api/v1/workspaces/w1/resources/r1?hard=true", '"4"'],
      ["POST", "/api/v1/workspaces/w1/resources/r1/restore", '"5"'],
    ]);
  });

  it("gets one, including a soft-deleted one when asked", async () => {
    const { api, calls } = setup([200, R], [200, R]);
    await api.get(WS, "r1");
    await api.get(WS, "r1", { includeDeleted: true });
    expect(calls.map((c) => c.url)).toEqual(["/api/v1/workspaces/w1/resources/r1", "/api/v1/workspaces/w1/resources/r1?include_deleted=true"]);
  });

  it("workspace reads: the workspace and its members", async () => {
    const { fetch, calls } = fakeFetch([200, { id: WS, name: "Team" }], [200, { items: [], next_cursor: null }]);
    const reads = workspaceReadsApi(new ApiClient({ fetch, tokens }));
    await reads.get(WS);
    await reads.members(WS);
    expect(calls.map((c) => c.url)).toEqual(["/api/v1/workspaces/w1", "/api/v1/workspaces/w1/members?limit=100"]);
  });

  it("helpers", () => {
    expect(etag(7)).toBe('"7"');
    expect(listQueryString({})).toBe("");
    expect(listQueryString({ q: "", deleted: true })).toBe("?deleted=true");
  });
});
