import { describe, expect, it, vi } from "vitest";
import { HubError } from "../../errors";
import { ApiClient } from "../client";
import { hasRole, versionTag, workspacesApi } from "../workspaces";

type Call = { url: string; init: RequestInit };

function fakeHub(...responses: Array<[number, unknown, Record<string, string>?]>) {
  const calls: Call[] = [];
  const queue = [...responses];
  const fetch = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    const [status, body, headers] = queue.shift() ?? [500, { code: "internal", message: "no more", status: 500 }];
    return new Response(body === undefined ? null : JSON.stringify(body), { status, headers });
  });
  const tokens = { getToken: vi.fn(async () => "tok") };
  const api = workspacesApi(new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, tokens }));
  return { api, calls };
}

/** The request's headers by their usual spelling (`If-Match`); on the wire their case does not matter. */
const headers = (call: Call | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  new Headers(call?.init.headers).forEach((value, name) => {
    out[name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase())] = value;
  });
  return out;
};

const WS = { id: "w1", name: "Team", role: "owner", version: 3, created_by: "u1", created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z" };
const MEMBER = { workspace_id: "w1", user_id: "u2", email: "b@example.com", display_name: "B", role: "member", joined_at: "x", updated_at: "x" };

describe("workspacesApi", () => {
  it("lists with limit and cursor in the query, bearer and CSRF headers, no cursor on the first page", async () => {
    const { api, calls } = fakeHub([200, { items: [WS], next_cursor: "c2" }], [200, { items: [], next_cursor: null }]);
    const first = await api.list({ limit: 20 });
    expect(first.next_cursor).toBe("c2");
    await api.list({ limit: 20, cursor: first.next_cursor });
    expect(calls.map((c) => c.url)).toEqual(["/api/v1/workspaces?limit=20", "/api/v1/workspaces?limit=20&cursor=c2"]);
    expect(headers(calls[0])).toMatchObject({ Authorization: "Bearer tok", "X-Requested-With": "hubbub", Accept: "application/json" });
    expect(calls[0]!.init.method).toBe("GET");
  });

  it("creates with a JSON body and an Idempotency-Key (a given key is reused)", async () => {
    const { api, calls } = fakeHub([201, WS], [201, WS]);
    await api.create({ name: "Team" });
    await api.create({ name: "Team" }, { idempotencyKey: "k-1" });
    expect(calls[0]!.init.method).toBe("POST");
    expect(calls[0]!.init.body).toBe(JSON.stringify({ name: "Team" }));
    expect(headers(calls[0])["Content-Type"]).toBe("application/json");
    expect(headers(calls[0])["Idempotency-Key"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(headers(calls[1])["Idempotency-Key"]).toBe("k-1");
  });

  it("renames and deletes with If-Match: the quoted version", async () => {
    const { api, calls } = fakeHub([200, { ...WS, name: "New", version: 4 }], [204, undefined]);
    await api.rename("w1", 3, { name: "New" });
    await api.remove("w1", 4);
    expect(calls.map((c) => [c.init.method, c.url, headers(c)["If-Match"]])).toEqual([
      ["PATCH", "/api/v1/workspaces/w1", '"3"'],
      ["DELETE", "/api/v1/workspaces/w1", '"4"'],
    ]);
    expect(versionTag(12)).toBe('"12"');
  });

  it("a stale version is a HubError precondition_failed (412)", async () => {
    const { api } = fakeHub([412, { code: "precondition_failed", message: "the workspace changed", status: 412, details: { current_version: 5 } }]);
    const error = await api.rename("w1", 3, { name: "x" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect(error).toMatchObject({ code: "precondition_failed", status: 412 });
  });

  it("members: list by page, add (always an invitation), update, remove, leave — paths encoded", async () => {
    const { api, calls } = fakeHub(
      [200, { items: [MEMBER], next_cursor: null }],
      [202, { status: "invited", invitation: { id: "i1" } }],
      [200, { ...MEMBER, role: "admin" }],
      [204, undefined],
      [204, undefined],
    );
    await api.members("w 1", { limit: 100, cursor: null });
    const added = await api.addMember("w1", { email: "new@example.com", role: "member" });
    expect(added).toMatchObject({ status: "invited", invitation: { id: "i1" } });
    await api.updateMember("w1", "u2", { role: "admin" });
    await api.removeMember("w1", "u2");
    await api.leave("w1");
    expect(calls.map((c) => `${c.init.method} ${c.url}`)).toEqual([
      "GET /api/v1/workspaces/w%201/members?limit=100",
      "POST /api/v1/workspaces/w1/members",
      "PATCH /api/v1/workspaces/w1/members/u2",
      "DELETE /api/v1/workspaces/w1/members/u2",
      "POST /api/v1/workspaces/w1/leave",
    ]);
    expect(calls[2]!.init.body).toBe(JSON.stringify({ role: "admin" }));
    expect(calls[4]!.init.body).toBeUndefined();
  });

  it("the last owner's 409 comes back as a conflict with the hub's message", async () => {
    const { api } = fakeHub([409, { code: "conflict", message: "a workspace must keep an owner", status: 409 }]);
    await expect(api.leave("w1")).rejects.toMatchObject({ code: "conflict", message: "a workspace must keep an owner" });
  });

  it("invitations: create, then accept and decline with the token in the body, never the URL", async () => {
    const { api, calls } = fakeHub([201, { id: "i1" }], [200, { workspace_id: "w1", role: "member" }], [204, undefined]);
    await api.invite("w1", { email: "x@example.com", role: "viewer" });
    await expect(api.acceptInvitation("a/b+c")).resolves.toEqual({ workspace_id: "w1", role: "member" });
    await api.declineInvitation("t");
    expect(calls.map((c) => c.url)).toEqual([
      "/api/v1/workspaces/w1/invitations",
      "/api/v1/invitations/accept",
      "/api/v1/invitations/decline",
    ]);
    expect(calls[1]!.init.body).toBe(JSON.stringify({ token: "a/b+c" }));
    expect(calls[2]!.init.body).toBe(JSON.stringify({ token: "t" }));
  });

  it("invitations: the pending list pages by cursor; revoke is a DELETE with an Idempotency-Key", async () => {
    const { api, calls } = fakeHub([200, { items: [], next_cursor: null }], [204, undefined]);
    await api.invitations("w1", { limit: 50, cursor: "c1" });
    await api.revokeInvitation("w1", "i/1", { idempotencyKey: "k-2" });
    expect(calls.map((c) => `${c.init.method} ${c.url}`)).toEqual([
      "GET /api/v1/workspaces/w1/invitations?limit=50&cursor=c1",
      "DELETE /api/v1/workspaces/w1/invitations/i%2F1",
    ]);
    expect(headers(calls[1])["Idempotency-Key"]).toBe("k-2");
  });

  it("activity: newest first pages by cursor", async () => {
    const { api, calls } = fakeHub([200, { items: [], next_cursor: null }]);
    await api.activity("w1", { limit: 30, cursor: "abc" });
    expect(calls[0]!.url).toBe("/api/v1/workspaces/w1/activity?limit=30&cursor=abc");
  });
});

describe("hasRole", () => {
  it("orders owner > admin > member > viewer", () => {
    expect(hasRole("owner", "admin")).toBe(true);
    expect(hasRole("admin", "admin")).toBe(true);
    expect(hasRole("member", "admin")).toBe(false);
    expect(hasRole("viewer", "member")).toBe(false);
    expect(hasRole(null, "viewer")).toBe(false);
  });
});
