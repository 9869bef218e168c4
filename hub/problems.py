"""RFC 9457 problem details: how every REST failure looks."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from hubbub.contracts.errors import (
    TITLE_OF,
    HubbubError,
    MethodNotAllowed,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from hubbub.logs import request_id_var

PROBLEM_JSON = "application/problem+json"


def echoable(text: str, limit: int = 200) -> str:
    """``text`` from a request made fit to echo in a problem's details: at most ``limit``
    characters, a byte that was not UTF-8 (a lone surrogate: JSON cannot carry it) as
    U+FFFD."""
    return text[:limit].encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def problem_body(error: HubbubError, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:hubbub:problem:{error.code.value}",
        "title": TITLE_OF[error.code],
        "status": error.status,
        "detail": error.message,
        "code": error.code.value,
    }
    if instance is not None:
        body["instance"] = instance
    request_id = request_id_var.get()
    if request_id is not None:
        body["request_id"] = request_id
    if error.details:
        body["details"] = {k: v for k, v in error.details.items() if k != "request_id"} or None
        if body["details"] is None:
            del body["details"]
    return body


def problem_response(error: HubbubError, request: web.Request | None = None) -> web.Response:
    headers = {}
    if isinstance(error, RateLimited | Unavailable):  # every 503 says when to come back
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="hubbub"'  # RFC 6750
    elif isinstance(error, MethodNotAllowed) and error.details.get("allow"):
        headers["Allow"] = str(error.details["allow"])
    return web.Response(
        status=error.status,
        body=orjson.dumps(problem_body(error, request.path if request is not None else None)),
        content_type=PROBLEM_JSON,
        headers=headers,
    )
