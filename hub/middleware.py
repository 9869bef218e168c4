"""Middlewares: request id and access log, problem details for every failure, and the
security headers every response carries."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.metrics import http_requests
from hub.problems import problem_response
from hub.state import SETTINGS
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
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _status_error(exc: web.HTTPException) -> HubbubError:
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
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    start = time.perf_counter()
    status = 500  # what the log says if even the error handling fails
    response: web.StreamResponse
    try:
        try:
            response = await handler(request)
        except HubbubError as exc:
            response = problem_response(exc, request)
        except web.HTTPException as exc:
            if exc.status < 400:  # redirects and 304 pass through
                status = exc.status
                raise
            response = problem_response(_status_error(exc), request)
        except Exception as exc:
            outage = redis_outage(exc) or nats_outage(exc)
            if outage is None:
                log.exception("unhandled error", extra={"path": request.path})
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
            if request.path.startswith("/api/"):
                response.headers.setdefault("Content-Security-Policy", API_CSP)
                response.headers.setdefault("Cache-Control", "no-store")
        status = response.status
        http_requests[f"{status // 100}xx"] += 1
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
        request_id_var.reset(token)


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
