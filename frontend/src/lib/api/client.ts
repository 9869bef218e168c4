import createClient, { type Client } from "openapi-fetch";
import { HubError } from "../errors";
import type { paths } from "./schema";

export interface TokenSource {
  /**
   * The current access token, refreshed if needed; null when signed out.
   * `rejected`: the token the hub just refused (a newer one may already exist).
   */
  getToken(options: { forceRefresh: boolean; rejected?: string | null }): Promise<string | null>;
}

export interface ApiClientOptions {
  /** Where `/api/v1` is served. Default "/api/v1" (same origin); a relative base stays relative on the wire. */
  baseUrl?: string;
  /** Called as `fetch(url, init)`. */
  fetch?: typeof fetch;
  tokens?: TokenSource;
}

/** How a call is sent; see {@link ApiClient.via}. */
export interface SendOptions {
  /** Send the bearer token, and retry once with a fresh one after a 401 (default true). */
  auth?: boolean;
}

/** Every request carries this header; the hub uses it as a CSRF guard on cookie-authenticated routes. */
export const CSRF_HEADER = { "X-Requested-With": "hubbub" } as const;

/** The generated REST client: paths, params, bodies and replies typed from `schema.d.ts`. */
export type HubFetch = Client<paths>;

/** The prefix of every path in the OpenAPI document. */
const API_PREFIX = "/api/v1";
/**
 * openapi-fetch builds a `Request`, which needs an absolute URL outside a page
 * (tests, workers). It builds them on this origin; the transport swaps
 * `<origin>/api/v1` for the configured base before anything goes out.
 */
const PLACEHOLDER_ORIGIN = "http://hubbub.invalid";

/**
 * Query strings as the hub reads them: `undefined`, `null` and `""` are left
 * out, arrays repeat the key (`tag=a&tag=b`), everything form-encoded.
 */
export function serializeQuery(query: Record<string, unknown> | undefined): string {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) for (const item of value) qs.append(key, String(item));
    else qs.set(key, String(value));
  }
  return qs.toString();
}

/**
 * The REST client for `/api/v1`: `openapi-fetch` over the generated `paths`
 * (`http`), with what every call needs done once, in its transport:
 *
 * - `Accept: application/json` and the CSRF header on every request;
 * - the bearer token from memory (`tokens`), and after a 401 one retry with a
 *   forced refresh (`rejected` = the refused token) — unless the call goes
 *   `via({auth: false})` (login, register; logout, which must not refresh
 *   inside the cookie lock);
 * - a network failure becomes a local `unavailable` HubError (an abort stays
 *   an abort).
 *
 * `unwrap` turns a reply into its data, or throws the hub's RFC 9457 problem
 * as a {@link HubError} (`code`, `status`, `message` = `detail`, `details`,
 * the request id, `Retry-After`). Cookie calls pass `credentials: "include"`;
 * everything else is `same-origin`.
 */
export class ApiClient {
  /** Typed calls: `api.unwrap(api.http.GET("/api/v1/workspaces/{workspace_id}", { params: { path: { workspace_id } } }))`. */
  readonly http: HubFetch;
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly tokens: TokenSource | undefined;
  private readonly authenticated: (request: Request) => Promise<Response>;
  private readonly anonymous: (request: Request) => Promise<Response>;

  constructor(options: ApiClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? API_PREFIX).replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.tokens = options.tokens;
    this.authenticated = (request) => this.transport(request, true);
    this.anonymous = (request) => this.transport(request, false);
    this.http = createClient<paths>({
      baseUrl: PLACEHOLDER_ORIGIN,
      fetch: this.authenticated,
      querySerializer: serializeQuery,
      headers: { Accept: "application/json", ...CSRF_HEADER },
      credentials: "same-origin",
    });
  }

  /** A per-request transport for openapi-fetch's `fetch` option: `api.http.POST(path, { body, fetch: api.via({ auth: false }) })`. */
  via(options: SendOptions): (request: Request) => Promise<Response> {
    return options.auth === false ? this.anonymous : this.authenticated;
  }

  /** The data of a 2xx reply; anything else throws the hub's problem as a HubError. */
  async unwrap<D>(pending: Promise<{ data?: D; error?: unknown; response: Response }>): Promise<D> {
    const { data, error, response } = await pending;
    if (!response.ok) throw HubError.fromResponse(response.status, error, response.headers);
    // openapi-fetch leaves `data` undefined only for a 204 or an empty body, where `D` is `undefined` too.
    return data as D;
  }

  private async transport(request: Request, auth: boolean): Promise<Response> {
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    // Read the body as text: `Request.body` (a stream) is not in every browser,
    // and a GET must go without one.
    const text = request.method === "GET" || request.method === "HEAD" ? "" : await request.text();
    const init: RequestInit = {
      method: request.method,
      body: text === "" ? undefined : text,
      signal: request.signal,
      credentials: request.credentials,
    };
    return this.dispatch(this.wireUrl(request.url), init, headers, auth);
  }

  /** Send with the bearer token; after a 401, once more with a refreshed one. */
  private async dispatch(url: string, init: RequestInit, headers: Record<string, string>, auth: boolean): Promise<Response> {
    const tokens = auth ? this.tokens : undefined;
    let token = tokens ? await tokens.getToken({ forceRefresh: false }) : null;
    let response = await this.send(url, init, headers, token);
    if (response.status === 401 && tokens && token !== null) {
      token = await tokens.getToken({ forceRefresh: true, rejected: token });
      if (token !== null) response = await this.send(url, init, headers, token);
    }
    return response;
  }

  private async send(url: string, init: RequestInit, headers: Record<string, string>, token: string | null): Promise<Response> {
    try {
      return await this.fetchImpl(url, { ...init, headers: token ? { ...headers, authorization: `Bearer ${token}` } : headers });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      if (init.signal?.aborted) throw init.signal.reason instanceof Error ? init.signal.reason : error;
      throw HubError.local("unavailable", "Could not reach the server", {}, error);
    }
  }

  /** `http://hubbub.invalid/api/v1/x?y` → `<base>/x?y`. */
  private wireUrl(url: string): string {
    const prefix = `${PLACEHOLDER_ORIGIN}${API_PREFIX}`;
    return url.startsWith(prefix) ? `${this.baseUrl}${url.slice(prefix.length)}` : url;
  }
}
