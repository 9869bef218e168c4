/**
 * One refresh in flight at a time. The hub rotates the refresh token on every
 * use and ends the session when a used one comes back (docs/auth.md), so two
 * overlapping refreshes of one cookie sign the user out. These tests run the
 * session against a fake hub that enforces exactly that rule.
 */
import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../client";
import { authApi } from "../auth";
import { AuthSession, type LockManagerLike } from "../session";

const USER = { id: "u1", email: "a@example.com", display_name: "A", role: "member" as const, is_active: true, created_at: "2026-01-01T00:00:00Z" };

interface Deferred {
  release(): void;
}

/**
 * The hub's side of the cookie: one jar per browser (shared by its tabs), a
 * current refresh token, single use. Responses wait until the test releases
 * them, so the test decides what overlaps.
 */
class FakeHub {
  jar: string | null = "r1";
  private valid = new Set(["r1"]);
  private used = new Set<string>();
  private serial = 1;
  ended = false;
  inFlight = 0;
  maxInFlight = 0;
  refreshes = 0;
  log: string[] = [];
  private waiting: Deferred[] = [];
  autoRelease = false;
  expiresIn = 900;

  fetch = vi.fn(async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const path = url.replace(/^.*\/api\/v1/, "");
    const cookie = this.jar; // what the browser sends: the jar at send time
    this.log.push(`${path} start`);
    if (path === "/auth/refresh") {
      this.refreshes += 1;
      this.inFlight += 1;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    }
    await this.gate();
    if (path === "/auth/refresh") this.inFlight -= 1;
    this.log.push(`${path} end`);
    const headers = new Headers(init?.headers);
    if (path === "/auth/refresh") {
      expect(init?.credentials).toBe("include");
      expect(headers.get("X-Requested-With")).toBe("hubbub");
      if (!cookie) return problem(401, "no_session");
      if (this.used.has(cookie)) {
        this.ended = true; // reuse: the whole session ends
        this.valid.clear();
        return problem(401, "reused");
      }
      if (!this.valid.has(cookie) || this.ended) return problem(401, "revoked");
      this.valid.delete(cookie);
      this.used.add(cookie);
      const next = `r${++this.serial}`;
      this.valid.add(next);
      this.jar = next; // Set-Cookie
      return json(200, { access_token: `a${this.serial}`, token_type: "bearer", expires_in: this.expiresIn, user: USER });
    }
    if (path === "/auth/login") {
      const next = `r${++this.serial}`;
      this.valid.add(next);
      this.ended = false;
      this.jar = next;
      return json(200, { access_token: `a${this.serial}`, token_type: "bearer", expires_in: this.expiresIn, user: USER });
    }
    if (path === "/auth/logout") {
      if (cookie && this.used.has(cookie)) {
        this.ended = true;
        return problem(401, "reused");
      }
      if (cookie) this.valid.delete(cookie);
      this.jar = null;
      return new Response(null, { status: 204 });
    }
    if (path === "/users/me") {
      const auth = headers.get("Authorization");
      if (auth !== `Bearer a${this.serial}`) return problem(401, "expired");
      return json(200, USER);
    }
    return json(404, { code: "not_found", detail: "no" });
  });

  /** The hub now expects a newer access token (the one the session holds has expired). */
  bumpAccessToken(): void {
    const next = `r${++this.serial}`;
    this.valid.clear();
    this.valid.add(next);
    this.jar = next;
  }

  private gate(): Promise<void> {
    if (this.autoRelease) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ release: resolve }));
  }

  /** Answer the oldest waiting request. */
  async releaseOne(): Promise<void> {
    await settle();
    const next = this.waiting.shift();
    if (!next) throw new Error(`nothing waiting; log: ${this.log.join(", ")}`);
    next.release();
    await settle();
  }

  async releaseAll(): Promise<void> {
    for (let i = 0; i < 50; i += 1) {
      await settle();
      if (!this.waiting.length) return;
      await this.releaseOne();
    }
  }

  get pending(): number {
    return this.waiting.length;
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function problem(status: number, reason: string): Response {
  return json(status, { type: "urn:hubbub:problem:unauthorized", title: "Unauthorized", status, detail: reason, code: "unauthorized", details: { reason } });
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** navigator.locks for tests: one FIFO mutex per name, shared by the "tabs" given the same instance. */
class FakeLocks implements LockManagerLike {
  private tails = new Map<string, Promise<unknown>>();
  held = 0;
  maxHeld = 0;
  request<T>(name: string, callback: () => Promise<T>): Promise<T> {
    const tail = this.tails.get(name) ?? Promise.resolve();
    const run = tail.then(async () => {
      this.held += 1;
      this.maxHeld = Math.max(this.maxHeld, this.held);
      try {
        return await callback();
      } finally {
        this.held -= 1;
      }
    });
    this.tails.set(name, run.catch(() => undefined));
    return run;
  }
}

class FakeTimers {
  time = 0;
  private tasks: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  now = () => this.time;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.ids;
    this.tasks.push({ at: this.time + ms, fn, id });
    return id;
  };
  clearTimeout = (id: unknown) => {
    this.tasks = this.tasks.filter((t) => t.id !== id);
  };
  async advance(ms: number) {
    const end = this.time + ms;
    for (;;) {
      const due = this.tasks.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.tasks = this.tasks.filter((t) => t !== due);
      this.time = due.at;
      due.fn();
      await settle();
    }
    this.time = end;
    await settle();
  }
}

describe("one refresh in flight (this tab)", () => {
  it("page load, API 401 retries, the realtime `expiring` push and the timer share one request", async () => {
    const hub = new FakeHub();
    const timers = new FakeTimers();
    const session = new AuthSession({ fetch: hub.fetch, locks: null, now: timers.now, timers });
    const api = new ApiClient({ fetch: hub.fetch, tokens: session });

    const load = session.getToken({ forceRefresh: false }); // SessionGate on page load
    const expiring = session.getToken({ forceRefresh: true }); // realtime: {"push":"expiring"}
    const direct = session.refresh();
    await hub.releaseOne();
    await expect(Promise.all([load, expiring, direct])).resolves.toEqual(["a2", "a2", "a2"]);
    expect(hub.refreshes).toBe(1);

    // Two API calls refused at once (their token expired under them): one refresh between them.
    hub.bumpAccessToken();
    const me = () => api.unwrap(api.http.GET("/api/v1/users/me"));
    const calls = Promise.all([me(), me()]);
    await hub.releaseOne(); // first /users/me → 401
    await hub.releaseOne(); // second /users/me → 401
    await hub.releaseAll(); // the one refresh, then both retries
    await expect(calls).resolves.toEqual([USER, USER]);
    expect(hub.refreshes).toBe(2);
    expect(hub.maxInFlight).toBe(1);
    expect(hub.ended).toBe(false);
  });

  it("a forced refresh asked for while one is in flight does not start a second request", async () => {
    const hub = new FakeHub();
    const session = new AuthSession({ fetch: hub.fetch, locks: null });
    const first = session.refresh();
    await settle();
    expect(session.refreshInFlight).toBe(true);
    const second = session.getToken({ forceRefresh: true });
    await hub.releaseAll();
    await expect(Promise.all([first, second])).resolves.toEqual(["a2", "a2"]);
    expect(hub.refreshes).toBe(1);
    expect(hub.ended).toBe(false);
  });

  it("a caller whose token was refused gets the newer token without another refresh", async () => {
    const hub = new FakeHub();
    hub.autoRelease = true;
    const session = new AuthSession({ fetch: hub.fetch, locks: null });
    await session.refresh(); // a2
    await session.refresh(); // a3: someone else refreshed meanwhile
    await expect(session.getToken({ forceRefresh: true, rejected: "a2" })).resolves.toBe("a3");
    expect(hub.refreshes).toBe(2);
    await expect(session.getToken({ forceRefresh: true, rejected: "a3" })).resolves.toBe("a4");
  });

  it("logout waits for a refresh in flight, so it never presents a token the refresh just spent", async () => {
    const hub = new FakeHub();
    const session = new AuthSession({ fetch: hub.fetch, locks: null });
    const api = new ApiClient({ fetch: hub.fetch, tokens: session });
    const auth = authApi(api, session);
    const refresh = session.refresh();
    await settle();
    const logout = auth.logout();
    await settle();
    expect(hub.log).toEqual(["/auth/refresh start"]);
    await hub.releaseAll();
    await refresh;
    await logout;
    expect(hub.log).toEqual(["/auth/refresh start", "/auth/refresh end", "/auth/logout start", "/auth/logout end"]);
    expect(hub.ended).toBe(false);
    expect(session.state).toEqual({ authenticated: false, user: null, reason: "logout" });
  });

  it("sign out everywhere signs out here even when no token can be had first (stale token, hub unreachable)", async () => {
    const timers = new FakeTimers();
    let reachable = true;
    const hub = new FakeHub();
    hub.autoRelease = true;
    const fetch = vi.fn(async (input: string | URL | Request, init?: RequestInit) => {
      if (!reachable) throw new TypeError("Failed to fetch");
      return hub.fetch(input, init);
    }) as unknown as typeof globalThis.fetch;
    // A background tab: the refresh timer never ran, and the token is past its end.
    const session = new AuthSession({ fetch, locks: null, now: timers.now, timers: { setTimeout: () => 0, clearTimeout: () => {} } });
    await session.refresh();
    expect(session.state.authenticated).toBe(true);
    const auth = authApi(new ApiClient({ fetch, tokens: session }), session);
    timers.time += 899_000;
    reachable = false;

    await expect(auth.logoutEverywhere()).rejects.toThrow();
    expect(session.state).toEqual({ authenticated: false, user: null, reason: "logout" });
  });

  it("the fake hub really ends the session on overlapping refreshes (what the lock prevents)", async () => {
    const hub = new FakeHub();
    const a = new AuthSession({ fetch: hub.fetch, locks: null });
    const b = new AuthSession({ fetch: hub.fetch, locks: null });
    const both = Promise.all([a.refresh(), b.refresh()]);
    await hub.releaseAll();
    await expect(both).resolves.toEqual(["a2", null]);
    expect(hub.ended).toBe(true);
  });
});

describe("one refresh in flight (across tabs: Web Locks)", () => {
  it("two tabs refreshing at once take turns, and both keep the session", async () => {
    const hub = new FakeHub();
    const locks = new FakeLocks();
    const tabA = new AuthSession({ fetch: hub.fetch, locks });
    const tabB = new AuthSession({ fetch: hub.fetch, locks });
    const both = Promise.all([tabA.refresh(), tabB.refresh()]);
    await settle();
    expect(hub.pending).toBe(1); // B waits for the lock, not for the network
    await hub.releaseAll();
    await expect(both).resolves.toEqual(["a2", "a3"]);
    expect(hub.maxInFlight).toBe(1);
    expect(locks.maxHeld).toBe(1);
    expect(hub.ended).toBe(false);
    expect(hub.log).toEqual(["/auth/refresh start", "/auth/refresh end", "/auth/refresh start", "/auth/refresh end"]);
  });

  it("uses navigator.locks by default when the browser has it", async () => {
    const locks = new FakeLocks();
    const request = vi.spyOn(locks, "request");
    vi.stubGlobal("navigator", { locks });
    try {
      const hub = new FakeHub();
      hub.autoRelease = true;
      await new AuthSession({ fetch: hub.fetch }).refresh();
      expect(request).toHaveBeenCalledWith("hubbub-auth-cookie", expect.any(Function));
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe("refresh before expiry", () => {
  it("renews a 900 s token 30 s before it ends, and a 30 s token after 22.5 s", async () => {
    const hub = new FakeHub();
    hub.autoRelease = true;
    const timers = new FakeTimers();
    const session = new AuthSession({ fetch: hub.fetch, locks: null, now: timers.now, timers });
    await session.refresh();
    await timers.advance(869_000);
    expect(hub.refreshes).toBe(1);
    await timers.advance(1_000);
    expect(hub.refreshes).toBe(2);

    hub.expiresIn = 30;
    await timers.advance(870_000); // → a 30 s token
    expect(hub.refreshes).toBe(3);
    await timers.advance(22_499);
    expect(hub.refreshes).toBe(3);
    await timers.advance(1);
    expect(hub.refreshes).toBe(4);
    // getToken does not refresh a token that is not stale yet
    await expect(session.getToken({ forceRefresh: false })).resolves.toBe("a5");
    expect(hub.refreshes).toBe(4);
  });

  it("signs out with a reason when the cookie is gone at the next refresh", async () => {
    const hub = new FakeHub();
    hub.autoRelease = true;
    const timers = new FakeTimers();
    const session = new AuthSession({ fetch: hub.fetch, locks: null, now: timers.now, timers });
    const seen: unknown[] = [];
    session.onChange((s) => seen.push(s.reason));
    await session.refresh();
    hub.jar = null; // the cookie was deleted (or expired)
    await timers.advance(900_000);
    expect(session.state).toEqual({ authenticated: false, user: null, reason: "expired" });
    expect(seen.at(-1)).toBe("expired");
  });

  it("names a revoked session (logout everywhere, token reuse) as revoked", async () => {
    const hub = new FakeHub();
    hub.autoRelease = true;
    const session = new AuthSession({ fetch: hub.fetch, locks: null });
    await session.refresh();
    hub.ended = true;
    await expect(session.refresh()).resolves.toBeNull();
    expect(session.state.reason).toBe("revoked");
  });

  it("a fresh visit without a session stays quiet (no reason, no event)", async () => {
    const hub = new FakeHub();
    hub.autoRelease = true;
    hub.jar = null;
    const session = new AuthSession({ fetch: hub.fetch, locks: null });
    const listener = vi.fn();
    session.onChange(listener);
    await expect(session.getToken({ forceRefresh: false })).resolves.toBeNull();
    expect(listener).not.toHaveBeenCalled();
    expect(session.state.reason).toBeNull();
  });

  it("retries a refresh that failed for a transient reason", async () => {
    const hub = new FakeHub();
    hub.autoRelease = true;
    const timers = new FakeTimers();
    const session = new AuthSession({ fetch: hub.fetch, locks: null, now: timers.now, timers, retryMs: 5_000 });
    await session.refresh();
    hub.fetch.mockRejectedValueOnce(new TypeError("Failed to fetch"));
    await timers.advance(870_000);
    expect(session.state.authenticated).toBe(true);
    const before = hub.refreshes;
    await timers.advance(5_000);
    expect(hub.refreshes).toBe(before + 1);
    expect(session.peekToken()).toMatch(/^a/);
  });
});
