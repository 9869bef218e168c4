import { HubError, isRecord } from "../errors";
import { CSRF_HEADER } from "./client";
import type { TokenResponse, UserPublic } from "./types";

/** Why there is no session (any more). */
export type SignOutReason =
  /** The user signed out in this tab. */
  | "logout"
  /** The refresh token expired, or no refresh cookie was left. */
  | "expired"
  /** The session was ended elsewhere (logout everywhere, password change/reset, token reuse). */
  | "revoked"
  /** An admin deactivated the account. */
  | "deactivated";

export interface SessionState {
  user: UserPublic | null;
  authenticated: boolean;
  /** Set when a session ended (not on a fresh visit without one). */
  reason: SignOutReason | null;
}

/** The part of the Web Locks API used here (`navigator.locks`). */
export interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

export interface SessionTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface AuthSessionOptions {
  /** Default "/api/v1". */
  baseUrl?: string;
  fetch?: typeof fetch;
  now?: () => number;
  timers?: SessionTimers;
  /**
   * Refresh this long before the token expires (at most a quarter of its
   * lifetime, so a 30 s token is renewed after 22.5 s, not in a loop).
   */
  skewMs?: number;
  /** Retry a refresh that failed for a transient reason (network, 5xx) after this long. */
  retryMs?: number;
  /**
   * Serialises cookie operations across the tabs of this origin. Default:
   * `navigator.locks` where the browser has it; `null` = this tab only.
   */
  locks?: LockManagerLike | null;
  lockName?: string;
}

export interface TokenRequest {
  forceRefresh: boolean;
  /**
   * The token the caller saw refused. If the session already holds a
   * different one (someone refreshed meanwhile), that one is returned without
   * another refresh.
   */
  rejected?: string | null;
}

const LOCK_NAME = "hubbub-auth-cookie";

function defaultLocks(): LockManagerLike | null {
  if (typeof navigator === "undefined") return null;
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks || typeof locks.request !== "function") return null;
  return {
    request: <T,>(name: string, callback: () => Promise<T>) => locks.request(name, callback) as Promise<unknown> as Promise<T>,
  };
}

/**
 * The access token lives here, in memory only — never in localStorage or a
 * readable cookie. The refresh token is an httpOnly cookie the browser sends
 * to `POST /auth/refresh` (with `credentials: 'include'` and the CSRF header).
 *
 * **One refresh at a time.** The hub rotates the refresh token on every use
 * and treats a second use of the same token as theft: it ends the session.
 * Two refreshes that overlap would both send the same cookie. So:
 *
 * - in this tab, every caller (page load, API 401 retry, realtime `expiring`
 *   push, the timer before expiry) shares the one refresh promise;
 * - across tabs, every request that sends or replaces the cookie (refresh,
 *   login, logout) runs under one Web Lock, so a second tab's refresh starts
 *   only after the first one's response has stored the new cookie.
 */
export class AuthSession {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly timers: SessionTimers;
  private readonly skewMs: number;
  private readonly retryMs: number;
  private readonly locks: LockManagerLike | null;
  private readonly lockName: string;
  private token: { value: string; expiresAt: number; staleAt: number } | null = null;
  private user: UserPublic | null = null;
  private reason: SignOutReason | null = null;
  private refreshing: Promise<string | null> | null = null;
  private exclusiveTail: Promise<unknown> = Promise.resolve();
  private timer: unknown = null;
  private readonly listeners = new Set<(state: SessionState) => void>();

  constructor(options: AuthSessionOptions = {}) {
    this.baseUrl = (options.baseUrl ?? "/api/v1").replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.now = options.now ?? (() => Date.now());
    this.timers = options.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
    };
    this.skewMs = options.skewMs ?? 30_000;
    this.retryMs = options.retryMs ?? 5_000;
    this.locks = options.locks === undefined ? defaultLocks() : options.locks;
    this.lockName = options.lockName ?? LOCK_NAME;
  }

  get state(): SessionState {
    return { user: this.user, authenticated: this.token !== null, reason: this.reason };
  }

  /** Milliseconds since the epoch when the access token expires (null when signed out). */
  get expiresAt(): number | null {
    return this.token?.expiresAt ?? null;
  }

  /** The access token held now, without refreshing (null when none). */
  peekToken(): string | null {
    return this.token?.value ?? null;
  }

  /** True while a refresh request is on its way. */
  get refreshInFlight(): boolean {
    return this.refreshing !== null;
  }

  onChange(listener: (state: SessionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** For the API client and the realtime client alike. Null = signed out; rejects = try again later. */
  getToken = async ({ forceRefresh, rejected }: TokenRequest): Promise<string | null> => {
    const token = this.token;
    if (token && forceRefresh && rejected != null && token.value !== rejected) return token.value;
    if (token && !forceRefresh && token.staleAt > this.now()) return token.value;
    return this.refresh();
  };

  /**
   * Store what `POST /auth/login` (or refresh) returned, and plan the next
   * refresh. Tokens of another user than the one held (another tab signed in
   * as someone else, and the cookie is theirs now) end this user's session
   * first: listeners see the sign-out, then the new sign-in, so nothing of the
   * previous user (cached data, queued calls) carries over.
   */
  accept(response: TokenResponse): void {
    if (this.user !== null && response.user && response.user.id !== this.user.id) this.clear();
    const now = this.now();
    const lifetime = Math.max(0, response.expires_in * 1000);
    const lead = Math.min(this.skewMs, lifetime / 4);
    this.token = { value: response.access_token, expiresAt: now + lifetime, staleAt: now + lifetime - lead };
    if (response.user) this.user = response.user;
    this.reason = null;
    this.schedule(lifetime - lead);
    this.emit();
  }

  setUser(user: UserPublic | null): void {
    this.user = user;
    this.emit();
  }

  /** Forget the token and the user (the cookie is the hub's to clear). */
  clear(reason: SignOutReason | null = null): void {
    this.cancelTimer();
    const changed = this.token !== null || this.user !== null || this.reason !== reason;
    this.token = null;
    this.user = null;
    this.reason = reason;
    if (changed) this.emit();
  }

  /**
   * Trade the refresh cookie for a new access token. Null when there is no
   * valid session. Concurrent callers share one request.
   */
  refresh(): Promise<string | null> {
    this.refreshing ??= this.exclusive(() => this.doRefresh()).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /**
   * Run `fn` while no other cookie operation runs, in this tab (a queue) and
   * in other tabs (a Web Lock). Login and logout go through here too: a
   * logout racing a refresh would present a token the refresh just spent.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const locked = () => (this.locks ? this.locks.request(this.lockName, fn) : fn());
    const run = this.exclusiveTail.then(locked, locked);
    this.exclusiveTail = run.catch(() => undefined);
    return run;
  }

  private async doRefresh(): Promise<string | null> {
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}/auth/refresh`, {
        method: "POST",
        credentials: "include",
        headers: { Accept: "application/json", ...CSRF_HEADER },
      });
    } catch (error) {
      throw HubError.local("unavailable", "Could not reach the server", {}, error);
    }
    const text = await response.text().catch(() => "");
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    if (response.status === 401 || response.status === 403) {
      // A session that ends says why; a visit that never had one stays quiet.
      if (this.token !== null || this.user !== null) this.clear(reasonOf(body));
      return null;
    }
    if (!response.ok) throw HubError.fromResponse(response.status, body, response.headers);
    this.accept(body as TokenResponse);
    return this.token?.value ?? null;
  }

  private schedule(inMs: number): void {
    this.cancelTimer();
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (!this.token) return;
      this.refresh().catch(() => {
        // Transient (offline, 5xx): try again while the token may still be saved.
        if (this.token && this.timer === null) this.schedule(this.retryMs);
      });
    }, Math.max(0, inMs));
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private emit(): void {
    const state = this.state;
    for (const listener of [...this.listeners]) listener(state);
  }
}

/** The hub names why a refresh was refused in `details.reason`. */
function reasonOf(body: unknown): SignOutReason {
  const details = isRecord(body) && isRecord(body.details) ? body.details : {};
  switch (details.reason) {
    case "deactivated":
      return "deactivated";
    case "revoked":
    case "reused":
      return "revoked";
    default:
      return "expired";
  }
}
