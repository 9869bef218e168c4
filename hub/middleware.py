"""Middlewares: request id and access log, problem details for every failure, and the
security headers every response carries; with tracing on (hubbub/tracing.py), each HTTP
request but the WebSocket upgrade is a span, the parent of the calls it makes."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub import calls, metrics
from hub.problems import problem_response
from hub.state import ACCESS_TOKENS, SETTINGS
from hubbub import tracing
from hubbub.contracts.errors import (
    BadRequest,
    HubbubError,
    Internal,
    MethodNotAllowed,
    NotFound,
    TooLarge,
)
from hubbub.dependencies import nats_outage, redis_outage, unavailable
from hubbub.logs import request_id_var

log = logging.getLogger("hubbub.hub")
access_log = logging.getLogger("hubbub.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-Id"
API_PATH = "/api/"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def api_methods(app: web.Application, path: str) -> list[str]:
    """The methods the API routes of ``path`` take, ignoring the frontend's catch-all
    (which answers GET on every path, but never for an API path)."""
    methods: set[str] = set()
    for resource in app.router.resources():
        info = resource.get_info()
        pattern = info.get("pattern")
        if "path" in info:
            matches = info["path"] == path and path.startswith(API_PATH)
        elif isinstance(pattern, re.Pattern):
            formatter = str(info.get("formatter", ""))
            matches = formatter.startswith(API_PATH) and pattern.fullmatch(path) is not None
        else:
            matches = False
        if matches:
            methods.update(route.method for route in resource if route.method != "*")
    return sorted(methods)


def _status_error(request: web.Request, exc: web.HTTPException) -> HubbubError:
    if exc.status in (404, 405) and request.path.startswith(API_PATH):
        # `Allow` lists exactly what this API path takes (aiohttp's own 405 would add
        # the frontend catch-all's GET and HEAD; and that catch-all turns a GET on a
        # POST-only API path into a 404).
        allow = api_methods(request.app, request.path)
        if allow and request.method not in allow:
            return MethodNotAllowed("this path does not take that method", allow=", ".join(allow))
    if exc.status == 404:
        return NotFound("no such route")
    if exc.status == 405:
        return MethodNotAllowed(
            "this path does not take that method", allow=exc.headers.get("Allow")
        )
    if exc.status == 413:
        return TooLarge("request body too large")
    if 400 <= exc.status < 500:
        return BadRequest(exc.text or exc.reason)
    return Internal()


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id, turn every failure into problem details, log one line."""
    request_id = calls.request_id(request.headers.get(REQUEST_ID_HEADER))
    token = request_id_var.set(request_id)
    measured = metrics.metrics_of(request.app)
    metrics_token = metrics.current.set(measured)
    start = time.perf_counter()
    status = 500  # what the log says if even the error handling fails
    response: web.StreamResponse
    span = span_token = None
    if tracing.tracer is not None and request.path != metrics.WS_PATH:
        # Not the upgrade: a socket's RPCs would all hang under its hours-long request.
        span = _http_span(request)
        span_token = tracing.activate(span)
    try:
        try:
            response = await handler(request)
        except HubbubError as exc:
            response = problem_response(exc, request)
        except web.HTTPException as exc:
            if exc.status < 400:  # redirects and 304 pass through
                status = exc.status
                raise
            response = problem_response(_status_error(request, exc), request)
        except Exception as exc:
            outage = redis_outage(exc) or nats_outage(exc)
            if outage is None:
                log.exception(
                    "unhandled error",
                    extra={
                        "path": request.path,
                        "op": _route_name(request),
                        "user_id": _user_id(request),
                    },
                )
                response = problem_response(Internal(request_id=request_id), request)
            else:  # a dependency is away, not a bug: 503 with Retry-After, no traceback
                log.warning(
                    "%s unreachable: %s: %s",
                    outage.dependency,
                    type(exc).__name__,
                    exc,
                    extra={"path": request.path},
                )
                response = problem_response(unavailable(outage), request)
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if request.path.startswith(API_PATH):
                response.headers.setdefault("Content-Security-Policy", API_CSP)
                response.headers.setdefault("Cache-Control", "no-store")
        status = response.status
        measured.observe_http(request, status, time.perf_counter() - start)
        return response
    finally:
        if request.app[SETTINGS].access_log and request.path != "/ws":
            access_log.info(
                "%s %s",
                request.method,
                request.path,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                    "remote": request.remote,
                },
            )
        if span is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                tracing.failed(span, str(status))
            tracing.deactivate(span_token)
            span.end()
        metrics.current.reset(metrics_token)
        request_id_var.reset(token)


def _route_name(request: web.Request) -> str:
    """``GET /api/v1/workspaces/{workspace_id}``: the method and route template."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else metrics.UNMATCHED
    return f"{request.method} {route}"


def _http_span(request: web.Request) -> tracing.Span:
    span = tracing.start_span(
        _route_name(request),
        traceparent=request.headers.get("traceparent"),
        remote=True,
        kind=tracing.SpanKind.SERVER,
        attributes={
            "http.request.method": request.method,
            "url.path": request.path,
            "hubbub.request_id": request_id_var.get() or "",
        },
    )
    assert span is not None  # only asked for with tracing on
    return span


def _user_id(request: web.Request) -> str | None:
    """The user a request's bearer token names, for an error report (no I/O; None
    when there is none or it does not verify)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    tokens = request.app.get(ACCESS_TOKENS)
    if tokens is None:
        return None
    try:
        return str(tokens.verify(header[7:]).sub)
    except Exception:
        return None


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for the configured origins only; same-origin needs none of it."""
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in request.app[SETTINGS].cors_origins
    if (
        request.method == "OPTIONS"
        and allowed
        and "Access-Control-Request-Method" in request.headers
    ):
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, PUT, DELETE"
        response.headers["Access-Control-Allow-Headers"] = (
            "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, "
            "X-Request-Id, X-Requested-With"
        )
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        response = await handler(request)
    if allowed and not response.prepared:
        assert origin is not None
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = (
            "ETag, Retry-After, X-Request-Id, Location"
        )
        response.headers.add("Vary", "Origin")
    return response
