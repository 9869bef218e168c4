"""Middlewares: request id and access log, problem details for every failure, and the
security headers every response carries; with tracing on (hubbub/tracing.py), each HTTP
request but the WebSocket upgrade is a span, the parent of the calls it makes."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import HttpProcessingError

from hub import calls, metrics
from hub.problems import problem_response
from hub.state import ACCESS_TOKENS, BUS, SETTINGS
from hubbub import tracing
from hubbub.contracts.errors import (
    BadRequest,
    HubbubError,
    Internal,
    MethodNotAllowed,
    NotFound,
    TooLarge,
)
from hubbub.dependencies import NATS, nats_outage, redis_outage, unavailable
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
def request_context(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Give the request an id, turn every failure into problem details, log one line.

    A plain function handing over to a coroutine, so the WebSocket upgrade can take a
    lighter one (``_socket_request``) than an HTTP request, or none at all when its
    handler answers its own failures (``answers_own_failures``, the hub's ``/ws``):
    whatever is kept here stays suspended for the socket's whole life."""
    if request.path == metrics.WS_PATH:
        if request.match_info.handler in _SELF_ANSWERING:
            # No coroutine of ours for the socket's life: the handler answers its own
            # refusals and failures (``socket_refusal``, ``socket_failure``: headers and
            # counting) and counts its upgrade (``HubMetrics.upgraded``).
            request_id_var.set(calls.request_id(request.headers.get(REQUEST_ID_HEADER)))
            metrics.current.set(metrics.metrics_of(request.app))
            return handler(request)
        return _socket_request(request, handler)
    return _http_request(request, handler)


_SELF_ANSWERING: set[Callable[..., object]] = set()


def answers_own_failures(handler: Handler) -> Handler:
    """Mark a ``/ws`` handler that gives every answer but its upgrade the request id,
    security headers and CORS, and counts each answer in the HTTP metrics, itself: a
    refusal goes out through ``socket_refusal``, a failure before the upgrade through
    ``socket_failure``, and the upgrade is counted with ``HubMetrics.upgraded``.
    ``request_context`` then hands its request straight on, keeping no coroutine of its
    own while the socket is open (and the app needs no ``on_response_prepare`` signal,
    which every response would run)."""
    _SELF_ANSWERING.add(handler)
    return handler


def socket_failure(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The problem details answering a ``/ws`` handler's failure before the upgrade,
    with the headers and counting of ``socket_refusal``."""
    return socket_refusal(request, _failure_response(request, exc, request_id_var.get() or ""))


def socket_refusal(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """A marked ``/ws`` handler's answer that is not the upgrade (a refusal's problem
    details): the request id, the security headers and CORS, as ``request_context`` gives
    every other answer, and counted in the HTTP metrics by status."""
    if not response.prepared:
        _set_headers(request, response, request_id_var.get() or "")
        _set_cors(request, response)
    metrics.metrics_of(request.app).observe_http(request, response.status, 0.0)
    return response


async def _http_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = calls.request_id(request.headers.get(REQUEST_ID_HEADER))
    token = request_id_var.set(request_id)
    measured = metrics.metrics_of(request.app)
    metrics_token = metrics.current.set(measured)
    settings = request.app[SETTINGS]
    start = time.perf_counter()
    seconds: float | None = None
    status = 500  # what the log says if even the error handling fails
    response: web.StreamResponse
    span = span_token = None
    if tracing.tracer is not None:
        span = _http_span(request)
        span_token = tracing.activate(span)
    try:
        try:
            _check_declared_size(request)
            response = await handler(request)
        except Exception as exc:
            response = _failure_response(request, exc, request_id)
        _finish(request, response, request_id)
        # Here, not in ``cors``: a failure raised past it is answered only here.
        cors_headers(request, response)
        status = response.status
        # The answer's latency, observed now: not the reading of a refused body after it.
        seconds = time.perf_counter() - start
        measured.observe_http(request, status, seconds)
        if _refuses_unread_body(request, response):
            await _answer_unread(request, response, settings.request_timeout_s - seconds)
        return response
    except web.HTTPException as exc:  # a redirect or 304 passing through
        status = exc.status
        raise
    finally:
        if seconds is None:
            seconds = time.perf_counter() - start
        if settings.access_log:
            access_log.info(
                "%s %s",
                request.method,
                request.path,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
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


async def _socket_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``GET /ws``: the request id and the hub's metrics in the context for the socket's
    logs and RPCs, problem details for a refused upgrade; no span (a socket's RPCs would
    all hang under its hours-long request) and no access log line.

    This coroutine stays suspended while the socket is open, so it keeps no more than it
    must: the context variables are set without a token to reset them with (aiohttp runs
    each request in a task of its own, whose context goes with it); the upgrade is
    counted in the HTTP metrics when it ends, by status (``HubMetrics.observe_http``
    keeps no duration for the socket route: a socket's "latency" is its lifetime)."""
    request_id = calls.request_id(request.headers.get(REQUEST_ID_HEADER))
    request_id_var.set(request_id)
    metrics.current.set(metrics.metrics_of(request.app))
    start = time.perf_counter()
    try:
        response = await handler(request)
    except Exception as exc:
        response = _failure_response(request, exc, request_id)
    _finish(request, response, request_id)
    cors_headers(request, response)  # cors() hands the socket's request straight on
    seconds = time.perf_counter() - start  # kept only off the socket route (405s)
    metrics.metrics_of(request.app).observe_http(request, response.status, seconds)
    return response


def _failure_response(request: web.Request, exc: Exception, request_id: str) -> web.StreamResponse:
    """The problem details answering ``exc``; a redirect or 304 is raised again.

    Should those details not be writable (a bug: a detail JSON cannot carry, say), the
    answer is a plain ``internal`` problem, still with the request id, and the bug is
    logged: never aiohttp's bare-text 500."""
    if isinstance(exc, web.HTTPException) and exc.status < 400:
        raise exc  # redirects and 304 pass through
    try:
        return _problem_of(request, exc, request_id)
    except Exception:
        log.exception(
            "could not write the problem details of a failure",
            extra={"path": request.path, "failure": type(exc).__name__},
        )
        return problem_response(Internal())


def _problem_of(request: web.Request, exc: Exception, request_id: str) -> web.StreamResponse:
    if isinstance(exc, HubbubError):
        return problem_response(exc, request)
    if isinstance(exc, web.HTTPException):
        return problem_response(_status_error(request, exc), request)
    outage = redis_outage(exc) or nats_outage(exc)
    if outage is None:
        log.exception(
            "unhandled error",
            exc_info=exc,
            extra={"path": request.path, "op": _route_name(request), "user_id": _user_id(request)},
        )
        return problem_response(Internal(request_id=request_id), request)
    # A dependency is away, not a bug: 503 with Retry-After, no traceback — and one line
    # when it goes (the hub's outage tracker's), not one per request. NATS's link logs
    # its own going and coming back.
    bus = request.config_dict.get(BUS)
    if bus is not None:
        if outage.dependency != NATS:
            bus.health.failed(outage, exc)
    else:
        log.warning(
            "%s unreachable: %s: %s",
            outage.dependency,
            type(exc).__name__,
            exc,
            extra={"path": request.path},
        )
    return problem_response(unavailable(outage), request)


def _finish(request: web.Request, response: web.StreamResponse, request_id: str) -> None:
    """The request id and the security headers on an answer not sent yet; and, if the
    request's body could not be read (it does not decode as its ``Content-Encoding``
    says), the connection closed after it: what is left of that body is never read."""
    if not response.prepared:
        _set_headers(request, response, request_id)
        if request.content.exception() is not None:
            response.force_close()
            # Marked ended, so aiohttp does not try to read the rest after the answer
            # (and log that read's failure as a server error).
            request.content.feed_eof()


def _check_declared_size(request: web.Request) -> None:
    """A body whose ``Content-Length`` is over the limit is refused before any route
    looks at the request, whatever the route: otherwise a refusal that comes first (no
    token: 401; a GET, whose body no one reads) would leave aiohttp to read all of it,
    however large, to keep the connection. (A body over the limit without a length is
    refused where it is read.) What becomes of the rest: ``_answer_unread``."""
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"request body larger than {limit} bytes", limit=limit)


# A body refused by its ``Content-Length`` but at most this large on the wire is still
# read to its end (see DECODED_FACTOR for a compressed one), and thrown away, after the
# answer: a proxy in front (compose's nginx takes bodies
# up to 2 MiB, twice the default limit) sends the whole body it has buffered, and takes
# a connection closed under its send for a hub that failed (it tries the other hub,
# answers 502 and leaves both out for a while). DRAIN_FACTOR times the limit, and at
# least DRAIN_FLOOR (twice nginx's 2 MiB), however small the limit.
DRAIN_FACTOR = 4
DRAIN_FLOOR = 4 * 1024 * 1024

# A compressed body inflates as it is read, and its decoding is the hub's CPU (about 1 s
# a GiB): the drain decodes at most DECODED_FACTOR times ``drain_limit`` (32 MiB by
# default, about 30 ms), then closes the connection as for a body past the limit.
DECODED_FACTOR = 8

# After a refusal of a body that is not read to its end, how long and how much of what
# the client still sends is read and thrown away before the connection is closed: enough
# for the client to have the answer before the close resets the connection, far less
# than a body.
CLOSE_LINGER_S = 1.0
CLOSE_LINGER_BYTES = 256 * 1024


def drain_limit(max_body_bytes: int) -> int:
    """The largest declared body a 413 still reads to its end (``DRAIN_FACTOR``)."""
    return max(DRAIN_FACTOR * max_body_bytes, DRAIN_FLOOR)


def _refuses_unread_body(request: web.Request, response: web.StreamResponse) -> bool:
    """A ``413`` to a request whose body was not read to its end (refused by its
    ``Content-Length``, or once it passed the limit): the rest is not wanted."""
    return response.status == 413 and not response.prepared and not request.content.is_eof()


async def _answer_unread(
    request: web.Request, response: web.StreamResponse, seconds_left: float
) -> None:
    """Answer a request whose body is refused unread: a declared body of at most
    ``drain_limit`` is read to its end after the answer, within the request's deadline
    and ``DECODED_FACTOR`` times that decoded, and the connection kept
    (``_answer_and_drain``); a larger one, a body of no declared
    length (chunked, over the limit already) and one whose client waits for a
    ``100 Continue`` it was not sent (it may never send the body) get the answer and the
    connection's close (``_answer_and_close``)."""
    declared = request.content_length
    limit = drain_limit(request.app[SETTINGS].max_body_bytes)
    if declared is None or declared > limit or _waits_for_continue(request):
        await _answer_and_close(request, response)
    else:
        await _answer_and_drain(request, response, seconds_left, DECODED_FACTOR * limit)


def _waits_for_continue(request: web.Request) -> bool:
    return (
        request.version == HttpVersion11
        and request.headers.get("Expect", "").lower() == "100-continue"
    )


async def _answer_and_drain(
    request: web.Request, response: web.StreamResponse, seconds_left: float, budget: int
) -> None:
    """Send ``response``, then read what is left of the body and throw it away, for at
    most ``seconds_left`` (the request's deadline) and ``budget`` bytes as decoded: the
    connection is then ready for the next request. A body not all in by then — or past
    the budget (a compressed one inflates: its decoding is the hub's CPU), or whose
    client went, or which does not decode — closes the connection instead, the answer
    long sent."""
    try:
        await response.prepare(request)
        await response.write_eof()
        async with asyncio.timeout(max(seconds_left, 0.0)):
            if await _throw_away(request, budget + 1):  # past the budget: False
                return  # all of it: the connection is kept
        await _linger_and_close(request)  # past the budget: as a body past the limit
        return
    except (TimeoutError, ConnectionError, web.RequestPayloadError, HttpProcessingError):
        pass  # not all of it (or the client gone): the connection goes
    if not request.content.is_eof():
        request.protocol.force_close()


async def _answer_and_close(request: web.Request, response: web.StreamResponse) -> None:
    """Send ``response`` with ``Connection: close`` and close the connection without
    reading the rest of the body (RFC 9110 §15.5.14). Left to itself aiohttp would read
    on, up to 10 s, to keep the connection.

    The close is staged (RFC 9112 §9.6): after the answer the hub's side is shut (the
    client reads the end at once); what the client had in flight is read and thrown away
    for at most ``CLOSE_LINGER_S`` or ``CLOSE_LINGER_BYTES``, or until the client closes,
    so that the close does not reset the connection before the client could read the
    answer; then the connection is closed, which keeps aiohttp from reading on."""
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        request.protocol.force_close()  # the client is gone
        return
    await _linger_and_close(request)


async def _throw_away(request: web.Request, most: int) -> bool:
    """Read what is left of the body and throw it away: True once it has all come, False
    once ``most`` bytes of it (as decoded) have."""
    thrown_away = 0
    while thrown_away < most:
        chunk = await request.content.readany()
        if not chunk:
            return True
        thrown_away += len(chunk)
    return False


async def _linger_and_close(request: web.Request) -> None:
    """Shut the hub's side of the connection (the client reads the end after the answer
    at once), throw away what the client still sends for at most ``CLOSE_LINGER_S`` or
    ``CLOSE_LINGER_BYTES``, or until it closes, then close the connection."""
    try:
        transport = request.transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()
        async with asyncio.timeout(CLOSE_LINGER_S):
            await _throw_away(request, CLOSE_LINGER_BYTES)
    except (TimeoutError, ConnectionError, web.RequestPayloadError, HttpProcessingError):
        pass  # the linger's end, or the client gone (or its body unreadable): close
    finally:
        request.protocol.force_close()


def _set_headers(request: web.Request, response: web.StreamResponse, request_id: str) -> None:
    response.headers[REQUEST_ID_HEADER] = request_id
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith(API_PATH):
        response.headers.setdefault("Content-Security-Policy", API_CSP)
        response.headers.setdefault("Cache-Control", "no-store")


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
def cors(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """CORS preflights for the configured origins only; same-origin needs none of it.

    Every other request is handed straight on (no frame of this middleware kept for it,
    nor for a socket's life): ``request_context`` adds the CORS headers to every answer,
    a failure's problem details too, which it alone builds."""
    if (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
        and request.headers.get("Origin") in request.app[SETTINGS].cors_origins
    ):
        return _preflight()
    return handler(request)


async def _preflight() -> web.StreamResponse:
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, PUT, DELETE"
    response.headers["Access-Control-Allow-Headers"] = (
        "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, "
        "X-Request-Id, X-Requested-With"
    )
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The CORS headers of an answer not sent yet, when the request's origin is allowed."""
    if not response.prepared:
        _set_cors(request, response)


def _set_cors(request: web.Request, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and origin in request.app[SETTINGS].cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = (
            "ETag, Retry-After, X-Request-Id, Location"
        )
        response.headers.add("Vary", "Origin")
