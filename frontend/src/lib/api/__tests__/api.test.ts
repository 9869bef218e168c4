import { describe, expect, it, vi } from "vitest";
import { HubError } from "../../errors";
import { ApiClient } from "../client";
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

const headers = (call: Call | undefined) => (call?.init.headers ?? {}) as Record<string, string>;

const TOKENS = { access_token: "a1", token_type: "bearer", expires_in: 900, user: { id: "u1", email: "a@b.c", display_name: "A" } };

describe("AuthSession", () => {
  it("refreshes through the httpOnly cookie with credentials included and the CSRF header", async () => {
    const { fetch, calls } = fakeFetch([200, TOKENS]);
    const session = new AuthSession({ fetch, locks: null });
    await expect(session.getToken({ forceRefresh: false })).resolves.toBe("a1");
    expect(calls[0]!.url).toBe("/api/v1/auth/refresh");
    expect(calls[0]!.init).toMatchObject({ method: "POST", credentials: "include" });
    expect(headers(calls[0])["X-Requested-With"]).toBe("hubbub");
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

describe("ApiClient", () => {
  const tokens = (values: Array<string | null>) => {
    const queue = [...values];
    return { getToken: vi.fn(async () => queue.shift() ?? null) };
  };

  it("sends JSON with the bearer token and the CSRF header", async () => {
    const { fetch, calls } = fakeFetch([201, { id: "w1" }]);
    const api = new ApiClient({ fetch, tokens: tokens(["t1"]) });
    await expect(api.post("/workspaces", { name: "x" })).resolves.toEqual({ id: "w1" });
    expect(calls[0]!.url).toBe("/api/v1/workspaces");
    expect(calls[0]!.init.body).toBe('{"name":"x"}');
    expect(headers(calls[0])).toMatchObject({
      Authorization: "Bearer t1",
      "Content-Type": "application/json",
      "X-Requested-With": "hubbub",
    });
  });

  it("retries once with a fresh token after a 401", async () => {
    const { fetch, calls } = fakeFetch([401, { error: { code: "unauthorized", message: "expired" } }], [200, { ok: 1 }]);
    const source = tokens(["old", "new"]);
    const api = new ApiClient({ fetch, tokens: source });
    await expect(api.get("/users/me")).resolves.toEqual({ ok: 1 });
    expect(source.getToken).toHaveBeenLastCalledWith({ forceRefresh: true, rejected: "old" });
    expect(headers(calls[1]).Authorization).toBe("Bearer new");
  });

  it("builds query strings and skips empty values", async () => {
    const { fetch, calls } = fakeFetch([200, { items: [] }]);
    const api = new ApiClient({ fetch });
    await api.get("/workspaces/w1/resources", { query: { q: "a b", limit: 20, cursor: null, status: undefined } });
    expect(calls[0]!.url).toBe("/api/v1/workspaces/w1/resources?q=a+b&limit=20");
  });

  it("sends Idempotency-Key and If-Match when asked", async () => {
    const { fetch, calls } = fakeFetch([200, {}]);
    const api = new ApiClient({ fetch });
    await api.patch("/x", {}, { idempotencyKey: "k1", ifMatch: '"3"' });
    expect(headers(calls[0])).toMatchObject({ "Idempotency-Key": "k1", "If-Match": '"3"' });
  });

  it("turns an error body into a HubError with field errors", async () => {
    const { fetch } = fakeFetch([
      422,
      { error: { code: "validation_failed", message: "Invalid", status: 422, details: { errors: [{ loc: ["body", "email"], msg: "bad", type: "x" }] } } },
    ]);
    const error = (await new ApiClient({ fetch }).post("/auth/register", {}).catch((e: unknown) => e)) as HubError;
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
    const error = (await new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch })
      .post("/auth/login", {}, { auth: false })
      .catch((e: unknown) => e)) as HubError;
    expect(error).toMatchObject({ code: "rate_limited", status: 429, message: "too many login attempts" });
    expect(error.retryAfter).toBe(42);
    expect(error.details.request_id).toBe("r1");
  });

  it("reports an unreachable server as a local unavailable error", async () => {
    const { fetch } = fakeFetch();
    await expect(new ApiClient({ fetch }).get("/health")).rejects.toMatchObject({ code: "unavailable", local: true });
  });
});
