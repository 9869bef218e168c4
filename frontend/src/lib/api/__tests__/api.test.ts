import { describe, expect, it, vi } from "vitest";
import { HubError } from "../../errors";
import { ApiClient, serializeQuery } from "../client";
import { AuthSession } from "../session";

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

const header = (call: Call | undefined, name: string) => new Headers(call?.init.headers).get(name);

const TOKENS = { access_token: "a1", token_type: "bearer", expires_in: 900, user: { id: "u1", email: "a@b.c", display_name: "A" } };

describe("AuthSession", () => {
  it("refreshes through the httpOnly cookie with credentials included and the CSRF header", async () => {
    const { fetch, calls } = fakeFetch([200, TOKENS]);
    const session = new AuthSession({ fetch, locks: null });
    await expect(session.getToken({ forceRefresh: false })).resolves.toBe("a1");
    expect(calls[0]!.url).toBe("/api/v1/auth/refresh");
    expect(calls[0]!.init).toMatchObject({ method: "POST", credentials: "include" });
    expect(header(calls[0], "X-Requested-With")).toBe("hubbub");
    expect(session.state).toEqual({ authenticated: true, user: TOKENS.user, reason: null });
  });

  it("shares one refresh request between concurrent callers", async () => {
    const { fetch, calls } = fakeFetch([200, TOKENS]);
    const session = new AuthSession({ fetch, locks: null });
    const tokens = await Promise.all([session.refresh(), session.getToken({ forceRefresh: true }), session.refresh()]);
    expect(tokens).toEqual(["a1", "a1", "a1"]);
    expect(calls).toHaveLength(1);
  });

  it("reuses a token until shortly before it expires", async () => {
    let now = 0;
    const { fetch, calls } = fakeFetch([200, TOKENS], [200, { ...TOKENS, access_token: "a2" }]);
    const session = new AuthSession({ fetch, locks: null, now: () => now, skewMs: 30_000 });
    await session.getToken({ forceRefresh: false });
    now = 869_000;
    await expect(session.getToken({ forceRefresh: false })).resolves.toBe("a1");
    now = 871_000;
    await expect(session.getToken({ forceRefresh: false })).resolves.toBe("a2");
    expect(calls).toHaveLength(2);
  });

  it("resolves null and forgets the user when the refresh cookie is refused", async () => {
    const { fetch } = fakeFetch([200, TOKENS], [401, { error: { code: "unauthorized", message: "no" } }]);
    const session = new AuthSession({ fetch, locks: null });
    const seen: boolean[] = [];
    session.onChange((s) => seen.push(s.authenticated));
    await session.refresh();
    await expect(session.getToken({ forceRefresh: true })).resolves.toBeNull();
    expect(session.state).toEqual({ authenticated: false, user: null, reason: "expired" });
    expect(seen).toEqual([true, false]);
  });

  it("signs the user out before taking the tokens of another user (another tab signed in as someone else)", async () => {
    const bob = { id: "u2", email: "b@b.c", display_name: "B" };
    const { fetch } = fakeFetch([200, TOKENS], [200, { ...TOKENS, access_token: "b1", user: bob }]);
    const session = new AuthSession({ fetch, locks: null });
    const seen: Array<[boolean, string | null]> = [];
    session.onChange((s) => seen.push([s.authenticated, s.user?.id ?? null]));
    await session.refresh();
    await expect(session.getToken({ forceRefresh: true })).resolves.toBe("b1");
    expect(seen).toEqual([
      [true, "u1"],
      [false, null],
      [true, "u2"],
    ]);
    expect(session.state).toEqual({ authenticated: true, user: bob, reason: null });
  });

  it("rejects (transient) when the server cannot be reached", async () => {
    const { fetch } = fakeFetch();
    const session = new AuthSession({ fetch, locks: null });
    await expect(session.refresh()).rejects.toMatchObject({ code: "unavailable", local: true });
  });

  it("never writes the token to web storage", async () => {
    const setItem = vi.fn();
    vi.stubGlobal("localStorage", { setItem, getItem: vi.fn() });
    vi.stubGlobal("sessionStorage", { setItem, getItem: vi.fn() });
    const { fetch } = fakeFetch([200, TOKENS]);
    await new AuthSession({ fetch, locks: null }).refresh();
    expect(setItem).not.toHaveBeenCalled();
    vi.unstubAllGlobals();
  });
});

describe("ApiClient (openapi-fetch over the generated paths)", () => {
  const tokens = (values: Array<string | null>) => {
    const queue = [...values];
    return { getToken: vi.fn(async () => queue.shift() ?? null) };
  };

  it("sends JSON with the bearer token, Accept and the CSRF header, to the relative base", async () => {
    const { fetch, calls } = fakeFetch([201, { id: "w1" }]);
    const api = new ApiClient({ fetch, tokens: tokens(["t1"]) });
    await expect(api.unwrap(api.http.POST("/api/v1/workspaces", { body: { name: "x" } }))).resolves.toEqual({ id: "w1" });
    expect(calls[0]!.url).toBe("/api/v1/workspaces");
    expect(calls[0]!.init).toMatchObject({ method: "POST", body: '{"name":"x"}', credentials: "same-origin" });
    expect(header(calls[0], "Authorization")).toBe("Bearer t1");
    expect(header(calls[0], "Content-Type")).toBe("application/json");
    expect(header(calls[0], "Accept")).toBe("application/json");
    expect(header(calls[0], "X-Requested-With")).toBe("hubbub");
  });

  it("puts the calls under another base URL when configured", async () => {
    const { fetch, calls } = fakeFetch([200, { status: "ok" }]);
    const api = new ApiClient({ fetch, baseUrl: "https://hub.example/prefix/api/v1/" });
    await api.unwrap(api.http.GET("/api/v1/health"));
    expect(calls[0]!.url).toBe("https://hub.example/prefix/api/v1/health");
  });

  it("retries once with a fresh token after a 401, naming the refused one", async () => {
    const { fetch, calls } = fakeFetch([401, { code: "unauthorized", detail: "expired", status: 401 }], [200, { ok: 1 }]);
    const source = tokens(["old", "new"]);
    const api = new ApiClient({ fetch, tokens: source });
    await expect(api.unwrap(api.http.GET("/api/v1/users/me"))).resolves.toEqual({ ok: 1 });
    expect(source.getToken).toHaveBeenLastCalledWith({ forceRefresh: true, rejected: "old" });
    expect(header(calls[1], "Authorization")).toBe("Bearer new");
    expect(calls[1]!.init.method).toBe("GET");
  });

  it("re-sends the body on the retry", async () => {
    const { fetch, calls } = fakeFetch([401, { code: "unauthorized", status: 401 }], [200, {}]);
    const api = new ApiClient({ fetch, tokens: tokens(["old", "new"]) });
    await api.unwrap(api.http.PATCH("/api/v1/users/me", { body: { display_name: "A" } }));
    expect(calls.map((c) => c.init.body)).toEqual(['{"display_name":"A"}', '{"display_name":"A"}']);
  });

  it("via({auth: false}) sends no token and never refreshes", async () => {
    const { fetch, calls } = fakeFetch([401, { code: "unauthorized", status: 401, detail: "Wrong email or password" }]);
    const source = tokens(["t1"]);
    const api = new ApiClient({ fetch, tokens: source });
    const error = await api
      .unwrap(api.http.POST("/api/v1/auth/login", { body: { email: "a@b.c", password: "x" }, fetch: api.via({ auth: false }), credentials: "include" }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "unauthorized", status: 401 });
    expect(source.getToken).not.toHaveBeenCalled();
    expect(calls).toHaveLength(1);
    expect(header(calls[0], "Authorization")).toBeNull();
    expect(calls[0]!.init.credentials).toBe("include");
  });

  it("builds query strings: empty values left out, arrays repeated, path parameters encoded", async () => {
    const { fetch, calls } = fakeFetch([200, { items: [] }]);
    const api = new ApiClient({ fetch });
    await api.http.GET("/api/v1/workspaces/{workspace_id}/resources", {
      params: { path: { workspace_id: "w 1" }, query: { q: "a b", limit: 20, cursor: null, status: undefined, kind: "", tag: ["x", "y"] } },
    });
    expect(calls[0]!.url).toBe("/api/v1/workspaces/w%201/resources?q=a+b&limit=20&tag=x&tag=y");
    expect(serializeQuery({ a: [], b: false, c: 0 })).toBe("b=false&c=0");
  });

  it("sends Idempotency-Key and If-Match as the operation declares them", async () => {
    const { fetch, calls } = fakeFetch([200, {}]);
    const api = new ApiClient({ fetch });
    await api.http.PATCH("/api/v1/workspaces/{workspace_id}", {
      params: { path: { workspace_id: "w1" }, header: { "Idempotency-Key": "k1", "If-Match": '"3"' } },
      body: { name: "x" },
    });
    expect(header(calls[0], "Idempotency-Key")).toBe("k1");
    expect(header(calls[0], "If-Match")).toBe('"3"');
  });

  it("turns an error body into a HubError with field errors", async () => {
    const { fetch } = fakeFetch([
      422,
      { error: { code: "validation_failed", message: "Invalid", status: 422, details: { errors: [{ loc: ["body", "email"], msg: "bad", type: "x" }] } } },
    ]);
    const api = new ApiClient({ fetch });
    const error = (await api
      .unwrap(api.http.POST("/api/v1/auth/register", { body: { email: "x", password: "y", display_name: "z" } }))
      .catch((e: unknown) => e)) as HubError;
    expect(error).toBeInstanceOf(HubError);
    expect(error.code).toBe("validation_failed");
    expect(error.fieldErrors).toEqual([{ loc: ["body", "email"], msg: "bad", type: "x" }]);
  });

  it("reads the hub's RFC 9457 problem: code, detail, details, request id and Retry-After", async () => {
    const fetch = vi.fn(async () =>
      new Response(
        JSON.stringify({
          type: "urn:hubbub:problem:rate_limited",
          title: "Too many requests",
          status: 429,
          detail: "too many login attempts",
          code: "rate_limited",
          request_id: "r1",
        }),
        { status: 429, headers: { "Retry-After": "42", "Content-Type": "application/problem+json" } },
      ),
    );
    const api = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch });
    const error = (await api
      .unwrap(api.http.POST("/api/v1/auth/login", { body: { email: "a@b.c", password: "x" }, fetch: api.via({ auth: false }) }))
      .catch((e: unknown) => e)) as HubError;
    expect(error).toMatchObject({ code: "rate_limited", status: 429, message: "too many login attempts" });
    expect(error.retryAfter).toBe(42);
    expect(error.details.request_id).toBe("r1");
  });

  it("an error without a body still has its status's code; a 204 resolves undefined", async () => {
    const fetch = vi.fn(async (url: string | URL | Request) =>
      String(url).endsWith("/leave") ? new Response(null, { status: 204 }) : new Response("", { status: 503 }),
    );
    const api = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch });
    await expect(api.unwrap(api.http.POST("/api/v1/workspaces/{workspace_id}/leave", { params: { path: { workspace_id: "w1" } } }))).resolves.toBeUndefined();
    await expect(api.unwrap(api.http.GET("/api/v1/health"))).rejects.toMatchObject({ code: "unavailable", status: 503 });
  });

  it("reports an unreachable server as a local unavailable error, and an abort as an abort", async () => {
    const { fetch } = fakeFetch();
    const api = new ApiClient({ fetch });
    await expect(api.unwrap(api.http.GET("/api/v1/health"))).rejects.toMatchObject({ code: "unavailable", local: true });
    const controller = new AbortController();
    controller.abort();
    const aborting = vi.fn(async (_url: unknown, init?: RequestInit) => {
      init?.signal?.throwIfAborted();
      return new Response("{}");
    });
    const api2 = new ApiClient({ fetch: aborting as unknown as typeof globalThis.fetch });
    await expect(api2.unwrap(api2.http.GET("/api/v1/health", { signal: controller.signal }))).rejects.toMatchObject({ name: "AbortError" });
  });
});
