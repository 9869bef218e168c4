"""REST routes built from the operation catalog: one route per operation with ``http``.

A request becomes params (path, then query for GET/DELETE or the JSON body otherwise)
and goes through ``hub/calls.py`` — access, idempotency key, validation against the
operation's params schema, the bus call — the path WebSocket RPC takes too. The worker's
result JSON is sent on as it came (it was validated against the result schema by the
bus). Only ``internal`` and ``service`` operations get no route (``hub.calls.reachable``).

Versions: an operation with ``Http.if_match`` takes its expected version from the
``If-Match`` header (never from the body) into that params field, and the handler raises
one ``stale_version`` conflict whatever the transport. Here, where HTTP is known, a
stale version that came from ``If-Match`` becomes ``412 precondition_failed``, as RFC 9110
asks; the same call over WebSocket RPC answers ``409 conflict``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from pydantic import BaseModel

from hub import calls
from hub.auth import authenticate
from hub.problems import echoable, problem_response
from hub.rest_hooks import RestHooks
from hub.state import BUS, CATALOG, REST_HOOKS, SETTINGS
from hubbub.contracts.errors import (
    BadRequest,
    HubbubError,
    PreconditionFailed,
    TooLarge,
    is_stale_version,
    validation_failed_from,
)
from hubbub.contracts.operations import Http, Operation
from hubbub.logs import request_id_var

API_PREFIX = "/api/v1"


def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields that take several values from a repeated query parameter (?tag=a&tag=b)."""
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        candidates = (
            typing.get_args(annotation)
            if isinstance(annotation, types.UnionType)
            or typing.get_origin(annotation) is typing.Union
            else (annotation,)
        )
        if any(typing.get_origin(c) in (list, set, tuple, frozenset) for c in candidates):
            names.add(field.alias or name)
    return frozenset(names)


def idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header, if given and well formed (``hub.calls``' rule)."""
    return calls.check_idempotency_key(request.headers.get("Idempotency-Key"))


def entity_tag(http: Http, value: object) -> str | None:
    """The ETag of a result: its entity version (``"3"``), and the caller's own field
    after it where the result has one (``"3-admin"``: a workspace with the caller's role,
    which changes without the version)."""
    assert http.etag is not None
    version = getattr(value, http.etag, None)
    if version is None:
        return None
    own = getattr(value, http.etag_caller, None) if http.etag_caller else None
    return f'"{version}"' if own is None else f'"{version}-{own}"'


# One element of an entity-tag list (RFC 9110 §8.8.3, §5.6.1): optional whitespace, then
# maybe a tag — ``W/`` or not, a quoted string of any visible character but ``"`` (a comma
# among them), obs-text too — and whitespace after it. Empty elements are allowed.
_LIST_ELEMENT = re.compile(r'[ \t]*(?:((?:W/)?"[^\x00-\x20"\x7f]*")[ \t]*)?')
# A strong tag this API issues: the version, maybe the caller's own field after it.
_VERSION_TAG = re.compile(r'"([1-9][0-9]{0,8})(?:-[a-z]{1,20})?"')
# One version with its quotes left out or half there (``3``, ``W/3``, ``"3-admin``):
# no entity-tag, but a form the API document's If-Match pattern has always allowed.
_UNQUOTED_VERSION = re.compile(r'(W/)?"?([1-9][0-9]{0,8})(?:-[a-z]{1,20})?"?')


def entity_tags(value: str) -> list[str] | None:
    """The entity-tags of an ``If-Match`` or ``If-None-Match`` value, as sent (``W/`` and
    quotes kept); None for ``*`` (any current representation). ``ValueError`` for
    anything else: a value that is neither ``*`` nor a list of at least one tag."""
    if value.strip(" \t") == "*":
        return None
    tags: list[str] = []
    pos, end = 0, len(value)
    while True:
        element = _LIST_ELEMENT.match(value, pos)
        assert element is not None  # every part of it is optional
        if element[1] is not None:
            tags.append(element[1])
        pos = element.end()
        if pos == end:
            break
        if value[pos] != ",":
            raise ValueError(f"not a list of entity-tags at position {pos}")
        pos += 1
    if not tags:
        raise ValueError("no entity-tag")
    return tags


def parse_if_match(value: str) -> int | None:
    """The version ``If-Match`` makes a write conditional on; None for ``*`` (whatever
    version is current: the write needs only the entity to be there).

    Strong comparison (RFC 9110 §13.1.1): a weak tag never matches, nor does a tag this
    API never issues, so they are left out. A tag with the caller's role, ``"7-admin"``,
    names version 7, as ``"7"`` does: a write is conditional on the entity's version
    alone (the caller's right to make it is checked anew). Raises ``BadRequest`` for a
    malformed value, or one naming more than one version (the handler takes one
    expected version); ``PreconditionFailed`` when no tag can match.

    A lone version without its quotes (``3``) is taken as ``"3"``, and ``W/3`` as the
    weak tag it stands for: the API document has always allowed those forms."""
    unquoted = _UNQUOTED_VERSION.fullmatch(value.strip(" \t"))
    if unquoted is not None:
        value = f'{unquoted[1] or ""}"{unquoted[2]}"'
    try:
        tags = entity_tags(value)
    except ValueError:
        raise BadRequest(
            'If-Match must be * or a list of ETags this API returned, like "3"'
        ) from None
    if tags is None:
        return None
    versions = {int(m[1]) for m in map(_VERSION_TAG.fullmatch, tags) if m is not None}
    if not versions:
        raise PreconditionFailed(
            "If-Match names no current version: a weak tag never matches it, and this "
            'API\'s tags are a version, like "3"'
        )
    if len(versions) > 1:
        raise BadRequest(
            "If-Match names more than one version: send the one ETag you hold (or *)",
            versions=sorted(versions),
        )
    return versions.pop()


def field_value(request: web.Request, name: str) -> str:
    """A list header's value: its lines, if sent more than once, joined as one list
    (RFC 9110 §5.3)."""
    return ", ".join(request.headers.getall(name))


def none_match(value: str, etag: str) -> bool:
    """Whether ``If-None-Match: value`` names ``etag`` by weak comparison (RFC 9110
    §13.1.2: ``W/"3"`` is ``"3"``, the whole quoted tag compared), or is ``*``. A value
    that is not a list of entity-tags names nothing: it is ignored, as the full answer
    is never wrong."""
    try:
        tags = entity_tags(value)
    except ValueError:
        return False
    return tags is None or etag.removeprefix("W/") in (t.removeprefix("W/") for t in tags)


async def read_json_object(request: web.Request, limit: int) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"request body larger than {limit} bytes", limit=limit)
    # To its end: ``read(n)`` would answer with whatever part has arrived so far.
    chunks, size = [], 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"request body larger than {limit} bytes", limit=limit)
            chunks.append(chunk)
    except web.RequestPayloadError as exc:
        raise unreadable_body(request, exc) from None
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    ctype = request.content_type
    if ctype not in ("application/json", "application/octet-stream", "") and not ctype.endswith(
        "+json"
    ):
        raise BadRequest(f"send JSON (Content-Type: application/json), not {ctype}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:  # orjson tells a byte that is not UTF-8 as a str's surrogate, at position 0
            raw.decode()
        except UnicodeDecodeError as bad:
            raise BadRequest(f"the body is not UTF-8 (at byte {bad.start})") from None
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def unreadable_body(request: web.Request, exc: web.RequestPayloadError) -> BadRequest:
    """The client's mistake that kept its body from being read: one that does not decode
    as its ``Content-Encoding`` says, or one cut short. (The request-context middleware
    closes the connection after the answer: the rest of such a body is never read.)"""
    cause = exc.__cause__
    encoding = request.headers.get("Content-Encoding")
    if isinstance(cause, ContentEncodingError) and encoding:
        return BadRequest(f"the body does not decode as Content-Encoding: {echoable(encoding)}")
    if isinstance(cause, HttpProcessingError):
        return BadRequest(f"the body could not be read: {cause.message}")
    return BadRequest("the body could not be read")


def make_handler(
    op: Operation, hooks: RestHooks | None = None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    assert op.http is not None
    hooks = hooks or RestHooks()
    http = op.http
    list_fields = _list_fields(op.params)
    path_params = http.path_params

    async def handle(request: web.Request) -> web.StreamResponse:
        caller = await authenticate(request, op)
        key = calls.admit(op, caller, request.headers.get("Idempotency-Key"))
        params: dict[str, Any] = {}
        if http.has_body:
            params.update(await read_json_object(request, request.app[SETTINGS].max_body_bytes))
        else:
            for name in request.query:
                if name in params:
                    continue
                values = request.query.getall(name)
                params[name] = values if name in list_fields else values[-1]
        for name in path_params:
            params[name] = request.match_info[name]
        if http.if_match and http.if_match in params:
            raise validation_failed_from(
                [
                    {
                        "loc": (http.if_match,),
                        "msg": "send the expected version as the If-Match header",
                        "type": "extra_forbidden",
                    }
                ]
            )
        unmatchable: PreconditionFailed | None = None
        if http.if_match and "If-Match" in request.headers:
            try:
                version = parse_if_match(field_value(request, "If-Match"))
            except PreconditionFailed as exc:
                unmatchable = exc
            else:
                if version is not None:
                    params[http.if_match] = version
        hooks.run_before(op.name, request, params)
        validated = calls.validate(op, params)
        if unmatchable is not None:
            # After the request's own checks (RFC 9110 §13.2.1: a precondition counts
            # only where the request would otherwise succeed), before the worker, which
            # could not meet it; whether the entity is there is not asked.
            raise unmatchable
        try:
            reply = await calls.send(
                request.app[BUS],
                op,
                validated,
                caller,
                idempotency_key=key,
                request_id=request_id_var.get() or calls.request_id(),
                traceparent=request.headers.get("traceparent"),
            )
        except HubbubError as exc:
            if http.if_match and is_stale_version(exc):
                raise PreconditionFailed(exc.message, **exc.details) from None
            if op.name not in hooks.failed:
                raise
            failure = problem_response(exc, request)
            hooks.run_failed(op.name, request, exc, failure)
            return failure
        headers = {}
        if http.etag is not None:
            etag = entity_tag(http, reply.value)
            if etag is not None:
                headers["ETag"] = etag
                if (
                    request.method in _READS
                    and "If-None-Match" in request.headers
                    and none_match(field_value(request, "If-None-Match"), etag)
                ):
                    return web.Response(status=304, headers=headers)
        if http.status == 204:
            response = web.Response(status=204, headers=headers)
        else:
            response = web.Response(
                status=http.status,
                body=reply.raw,
                content_type="application/json",
                headers=headers,
            )
        hooks.run_after(op.name, request, reply.value, response)
        return response

    handle.__name__ = op.name.replace(".", "_")
    return handle


_READS = ("GET", "HEAD")


async def expect_within_limit(request: web.Request) -> None:
    """``Expect: 100-continue`` (RFC 9110 §10.1.1): ``100 Continue`` for a body within the
    size limit, as aiohttp would; none for one over it, so that the client sends no body
    and gets the 413 (``hub.middleware``) instead. Any other expectation is 417."""
    expect = request.headers.get("Expect", "")
    if request.version != HttpVersion11:
        return
    if expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"Unknown Expect: {echoable(expect)}")
    length = request.content_length
    if length is not None and length > request.app[SETTINGS].max_body_bytes:
        return
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the answer's own head is still to be written


def add_operation_routes(app: web.Application) -> None:
    """A route per reachable operation; a GET's answers HEAD too (aiohttp sends no body)."""
    hooks = app.get(REST_HOOKS) or RestHooks()
    for op in app[CATALOG]:
        if op.http is not None and calls.reachable(op):
            path, handler = API_PREFIX + op.http.path, make_handler(op, hooks)
            if op.http.method == "GET":
                app.router.add_get(path, handler, name=op.name, expect_handler=expect_within_limit)
            else:
                app.router.add_route(
                    op.http.method,
                    path,
                    handler,
                    name=op.name,
                    expect_handler=expect_within_limit,
                )
