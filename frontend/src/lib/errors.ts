import type { components } from "./api/schema";

/**
 * One error type for everything the hub can refuse, over REST or WebSocket.
 * The codes and the REST body are the hub's OpenAPI document's
 * (`components.schemas.Problem`, generated into `api/schema.d.ts`): tsc fails
 * when {@link ERROR_CODES} and the document's `code` enum differ.
 *
 *   HubError                 code            status  origin
 *    ├─ bad_request          "bad_request"     400   hub
 *    ├─ validation_failed    "validation_failed" 422 hub — details.errors = [{loc, msg, type}]
 *    ├─ unauthorized         "unauthorized"    401   hub
 *    ├─ forbidden            "forbidden"       403   hub
 *    ├─ not_found            "not_found"       404   hub
 *    ├─ method_not_allowed   "method_not_allowed" 405 hub (REST: the path exists, not this method)
 *    ├─ conflict             "conflict"        409   hub
 *    ├─ precondition_failed  "precondition_failed" 412 hub (stale version / If-Match)
 *    ├─ request_timeout      "request_timeout" 408   hub (REST: the body did not arrive in time)
 *    ├─ too_large            "too_large"       413   hub — details.applied: a change made, its answer too large to send
 *    ├─ unprocessable        "unprocessable"   422   hub
 *    ├─ rate_limited         "rate_limited"    429   hub
 *    ├─ internal             "internal"        500   hub
 *    ├─ bad_gateway          "bad_gateway"     502   hub
 *    ├─ unavailable          "unavailable"     503   hub, or local: not connected / connection lost
 *    └─ timeout              "timeout"         504   hub, or local: no reply in time
 *
 * `local` is true when the browser made the error up (no reply, no socket,
 * network failure); the hub never saw or never answered the request.
 */

/** The hub's REST error body: RFC 9457 problem details with the stable `code` (OpenAPI `Problem`). */
export type Problem = components["schemas"]["Problem"];

export const ERROR_CODES = [
  "bad_request",
  "validation_failed",
  "unauthorized",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "conflict",
  "precondition_failed",
  "request_timeout",
  "too_large",
  "unprocessable",
  "rate_limited",
  "internal",
  "bad_gateway",
  "unavailable",
  "timeout",
] as const satisfies readonly Problem["code"][];

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Compile-time: every code of the OpenAPI document is in {@link ERROR_CODES} (the `satisfies` above checks the other way). */
type MissingCodes = Exclude<Problem["code"], ErrorCode>;
const everyDocumentedCode: [MissingCodes] extends [never] ? true : MissingCodes = true;
void everyDocumentedCode;

const STATUS_OF: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 422,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  precondition_failed: 412,
  request_timeout: 408,
  too_large: 413,
  unprocessable: 422,
  rate_limited: 429,
  internal: 500,
  bad_gateway: 502,
  unavailable: 503,
  timeout: 504,
};

const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  408: "request_timeout",
  409: "conflict",
  412: "precondition_failed",
  413: "too_large",
  422: "unprocessable",
  429: "rate_limited",
  500: "internal",
  502: "bad_gateway",
  503: "unavailable",
  504: "timeout",
};

/** Errors worth retrying later with the same request (and idempotency key). */
const RETRYABLE: ReadonlySet<string> = new Set(["rate_limited", "internal", "bad_gateway", "unavailable", "timeout"]);

export interface FieldError {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export interface ErrorBody {
  code: string;
  message: string;
  status?: number;
  details?: Record<string, unknown>;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value);
}

export class HubError extends Error {
  override readonly name = "HubError";
  readonly code: ErrorCode | (string & {});
  readonly status: number;
  readonly details: Record<string, unknown>;
  readonly local: boolean;

  constructor(body: ErrorBody, options: { local?: boolean; cause?: unknown } = {}) {
    super(body.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = body.code;
    this.status = body.status ?? (isErrorCode(body.code) ? STATUS_OF[body.code] : 0);
    this.details = body.details ?? {};
    this.local = options.local ?? false;
  }

  /** A client-side error: the hub did not answer (or was never asked). */
  static local(code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): HubError {
    return new HubError({ code, message, status: STATUS_OF[code], details }, { local: true, cause });
  }

  /** Parse the `error` member of a WebSocket error frame. */
  static fromFrame(error: unknown): HubError {
    if (isRecord(error) && typeof error.code === "string") {
      return new HubError({
        code: error.code,
        message: typeof error.message === "string" ? error.message : error.code,
        status: typeof error.status === "number" ? error.status : undefined,
        details: isRecord(error.details) ? error.details : undefined,
      });
    }
    return new HubError({ code: "internal", message: "Malformed error frame", status: 500 });
  }

  /**
   * Parse a REST error body. The hub answers {@link Problem} (its OpenAPI
   * document: `{type, title, status, detail?, code, details?, request_id?}`,
   * `application/problem+json`); also accepted, for proxies and older
   * bodies: `{error: {code, message, status, details}}`, a bare
   * `{code, message, ...}`, and a top-level `errors` list.
   */
  static fromResponse(status: number, body: unknown, headers?: Pick<Headers, "get">): HubError {
    const error = HubError.parseResponse(status, body);
    // RFC 9457 bodies carry the request id at the top level; keep it with the details.
    if (isRecord(body) && typeof body.request_id === "string" && error.details.request_id === undefined) {
      error.details.request_id = body.request_id;
    }
    const retryAfter = headers?.get("Retry-After");
    if (retryAfter && error.details.retry_after === undefined) {
      const seconds = Number(retryAfter);
      if (Number.isFinite(seconds)) error.details.retry_after = seconds;
    }
    return error;
  }

  private static parseResponse(status: number, body: unknown): HubError {
    const inner = isRecord(body) && isRecord(body.error) ? body.error : body;
    if (isRecord(inner)) {
      const code =
        typeof inner.code === "string" ? inner.code : (CODE_OF_STATUS[status] ?? (status >= 500 ? "internal" : "bad_request"));
      const message =
        typeof inner.message === "string"
          ? inner.message
          : typeof inner.detail === "string"
            ? inner.detail
            : typeof inner.title === "string"
              ? inner.title
              : `HTTP ${status}`;
      const details: Record<string, unknown> = isRecord(inner.details) ? { ...inner.details } : {};
      if (Array.isArray(inner.errors) && details.errors === undefined) details.errors = inner.errors;
      return new HubError({ code: code === "unprocessable" && details.errors ? "validation_failed" : code, message, status, details });
    }
    return new HubError({ code: CODE_OF_STATUS[status] ?? (status >= 500 ? "internal" : "bad_request"), message: `HTTP ${status}`, status });
  }

  /** Seconds to wait before trying again (`rate_limited`: the `Retry-After` header or `details.retry_after`). */
  get retryAfter(): number | null {
    const value = this.details.retry_after;
    return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : null;
  }

  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }

  /**
   * The hub made the change, but its answer was larger than a worker can send
   * (`too_large` with `details.applied`, docs/protocol.md): the write is done —
   * not a failure, and not to be sent again (a retry with its idempotency key
   * only answers the same). The answer is the changed object, so its event
   * and a read of it are over the same limit: what it made is not read back.
   */
  get applied(): boolean {
    return this.code === "too_large" && this.details.applied === true;
  }

  /**
   * The hub refused a request under an idempotency key it had already applied
   * to a different request (422 `unprocessable`, `details.idempotency_key`;
   * handlers/idempotency.py): that other request was made, this one was not.
   * Sent again as it was, the applied request answers its stored reply.
   */
  get keyUsedForOther(): boolean {
    // Not any 422: over REST one without a code (a proxy's page) reads as `unprocessable` too.
    return this.code === "unprocessable" && typeof this.details.idempotency_key === "string";
  }

  /** Field errors of a `validation_failed` error (empty otherwise). */
  get fieldErrors(): FieldError[] {
    const errors = this.details.errors;
    if (!Array.isArray(errors)) return [];
    return errors.filter(
      (e): e is FieldError => isRecord(e) && Array.isArray(e.loc) && typeof e.msg === "string",
    );
  }
}

const LOC_PREFIXES = new Set(["body", "params", "query", "path"]);

/**
 * Map field errors to form field names: `loc` joined with dots, without a
 * leading `body`/`params`/`query`/`path` segment. The first message per field wins.
 * An error about one field that is not a schema error (`details.field`, e.g.
 * 409 "an account with this email already exists") maps its message to that field.
 */
export function fieldErrorMap(error: HubError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of error.fieldErrors) {
    const loc = e.loc.length > 1 && LOC_PREFIXES.has(String(e.loc[0])) ? e.loc.slice(1) : e.loc;
    const key = loc.map(String).join(".") || "_";
    out[key] ??= e.msg;
  }
  const field = error.details.field;
  if (typeof field === "string" && field && error.fieldErrors.length === 0) out[field] ??= error.message;
  return out;
}

/**
 * What a write answered; or, when the hub made it but could not send its
 * answer (`too_large` with `details.applied`, see {@link HubError.applied}),
 * `made()`: what the caller knows it made (the copy it had with the change,
 * or nothing). Such a write is done — shown as done, not sent again — on
 * REST as on the socket. Any other error is thrown as it came.
 */
export async function orMade<T>(write: Promise<T>, made: () => T): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (error instanceof HubError && error.applied) return made();
    throw error;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
