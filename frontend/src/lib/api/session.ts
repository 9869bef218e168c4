import { HubError } from "../errors";
import { CSRF_HEADER } from "./client";
import type { TokenResponse, UserPublic } from "./types";

export interface AuthSessionOptions {
  /** Default "/api/v1". */
  baseUrl?: string;
  fetch?: typeof fetch;
  now?: () => number;
  /** Refresh this long before the token expires. */
  skewMs?: number;
}

export interface SessionState {
  user: UserPublic | null;
  authenticated: boolean;
}

/**
 * The access token lives here, in memory only — never in localStorage or a
 * readable cookie. The refresh token is an httpOnly cookie the browser sends
 * to `POST /auth/refresh` (with `credentials: 'include'` and the CSRF header);
 * concurrent refreshes share one request.
 */
export class AuthSession {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly skewMs: number;
  private token: { value: string; expiresAt: number } | null = null;
  private user: UserPublic | null = null;
  private refreshing: Promise<string | null> | null = null;
  private readonly listeners = new Set<(state: SessionState) => void>();

  constructor(options: AuthSessionOptions = {}) {
    this.baseUrl = (options.baseUrl ?? "/api/v1").replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.now = options.now ?? (() => Date.now());
    this.skewMs = options.skewMs ?? 30_000;
  }

  get state(): SessionState {
    return { user: this.user, authenticated: this.token !== null };
  }

  onChange(listener: (state: SessionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** For the API client and the realtime client alike. */
  getToken = async ({ forceRefresh }: { forceRefresh: boolean }): Promise<string | null> => {
    if (!forceRefresh && this.token && this.token.expiresAt - this.skewMs > this.now()) return this.token.value;
    return this.refresh();
  };

  /** Store what `POST /auth/login` (or refresh) returned. */
  accept(response: TokenResponse): void {
    this.token = { value: response.access_token, expiresAt: this.now() + response.expires_in * 1000 };
    if (response.user) this.user = response.user;
    this.emit();
  }

  setUser(user: UserPublic | null): void {
    this.user = user;
    this.emit();
  }

  clear(): void {
    this.token = null;
    this.user = null;
    this.emit();
  }

  /** Trade the refresh cookie for a new access token. Null when there is no valid session. */
  refresh(): Promise<string | null> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
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
    if (response.status === 401 || response.status === 403) {
      if (this.token || this.user) this.clear();
      return null;
    }
    const body: unknown = await response.json().catch(() => null);
    if (!response.ok) throw HubError.fromResponse(response.status, body);
    this.accept(body as TokenResponse);
    return this.token?.value ?? null;
  }

  private emit(): void {
    const state = this.state;
    for (const listener of [...this.listeners]) listener(state);
  }
}
