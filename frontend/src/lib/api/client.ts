import { HubError } from "../errors";

export interface TokenSource {
  /**
   * The current access token, refreshed if needed; null when signed out.
   * `rejected`: the token the hub just refused (a newer one may already exist).
   */
  getToken(options: { forceRefresh: boolean; rejected?: string | null }): Promise<string | null>;
}

export interface ApiClientOptions {
  /** Default "/api/v1" (same origin). */
  baseUrl?: string;
  fetch?: typeof fetch;
  tokens?: TokenSource;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Send the bearer token (default true). */
  auth?: boolean;
  /** `Idempotency-Key` header for mutations (header name to be confirmed by the hub's OpenAPI). */
  idempotencyKey?: string;
  /** `If-Match` for optimistic concurrency. */
  ifMatch?: string;
  credentials?: RequestCredentials;
}

/** Every request carries this header; the hub uses it as a CSRF guard on cookie-authenticated routes. */
export const CSRF_HEADER = { "X-Requested-With": "hubbub" } as const;

/**
 * A thin typed fetch wrapper for `/api/v1`: JSON in and out, bearer token from
 * memory, one retry after a forced token refresh on 401, errors as HubError.
 */
export class ApiClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly tokens: TokenSource | undefined;

  constructor(options: ApiClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? "/api/v1").replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.tokens = options.tokens;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const auth = options.auth ?? true;
    let token = auth && this.tokens ? await this.tokens.getToken({ forceRefresh: false }) : null;
    let response = await this.send(method, path, options, token);
    if (response.status === 401 && auth && this.tokens && token !== null) {
      token = await this.tokens.getToken({ forceRefresh: true, rejected: token });
      if (token !== null) response = await this.send(method, path, options, token);
    }
    return parse<T>(response);
  }

  get<T>(path: string, options?: Omit<RequestOptions, "body">) {
    return this.request<T>("GET", path, options);
  }
  post<T>(path: string, body?: unknown, options?: RequestOptions) {
    return this.request<T>("POST", path, { ...options, body });
  }
  patch<T>(path: string, body?: unknown, options?: RequestOptions) {
    return this.request<T>("PATCH", path, { ...options, body });
  }
  put<T>(path: string, body?: unknown, options?: RequestOptions) {
    return this.request<T>("PUT", path, { ...options, body });
  }
  delete<T>(path: string, options?: RequestOptions) {
    return this.request<T>("DELETE", path, options);
  }

  url(path: string, query?: RequestOptions["query"]): string {
    const qs = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) qs.set(key, String(value));
    }
    const suffix = qs.size ? `?${qs}` : "";
    return `${this.baseUrl}${path.startsWith("/") ? path : `/${path}`}${suffix}`;
  }

  private async send(method: string, path: string, options: RequestOptions, token: string | null): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json", ...CSRF_HEADER, ...options.headers };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
    if (options.ifMatch) headers["If-Match"] = options.ifMatch;
    try {
      return await this.fetchImpl(this.url(path, options.query), {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: options.signal,
        credentials: options.credentials ?? "same-origin",
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      throw HubError.local("unavailable", "Could not reach the server", {}, error);
    }
  }
}

async function parse<T>(response: Response): Promise<T> {
  const text = await response.text();
  let body: unknown = undefined;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (!response.ok) throw HubError.fromResponse(response.status, body, response.headers);
  return body as T;
}
