"""One edge path for an operation call, whether it came over REST or WebSocket RPC.

Both transports turn a request into ``(operation, caller, params, idempotency key)`` and
hand it here, so the rules that decide its fate are written once and answer with the
same error code either way:

1. **reachable** — an ``internal`` or ``service`` operation is not callable by clients:
   ``not_found`` (REST registers no route for it; RPC names it unknown);
2. **access** — ``public``: anyone; ``user``: a signed-in caller, else ``unauthorized``;
   ``admin``: the same with the admin role, else ``forbidden``;
3. **idempotency key** — when given, 1-200 visible ASCII characters, else
   ``bad_request``; only mutating operations pass it on to the worker;
4. **params** — validated against the operation's schema: ``validation_failed`` with
   the wire form of pydantic's errors (``invalid``);
5. **the bus call** — to a worker, with the caller and the request id.

The caller itself comes from an access token through ``verify`` and ``caller_of``, for
both (REST reads it from ``Authorization``: ``hub/auth.py``). What is only HTTP (body
parsing, ``If-Match``, cookies, ``ETag``) stays in ``hub/rest.py``; what is only a
socket (command ids, in-flight limits) in ``hub/ws/rpc.py``. Request ids are minted by
``request_id`` for both.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

from pydantic import BaseModel, ValidationError

from hub import metrics
from hub.revocations import Revocations
from hubbub import tracing
from hubbub.bus import Bus, Done, Reply, new_request_id
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import (
    BadRequest,
    Forbidden,
    HubbubError,
    NotFound,
    Unauthorized,
    ValidationFailed,
    validation_failed_from,
)
from hubbub.contracts.operations import Access, Catalog, Operation
from hubbub.metric_buckets import Timing
from hubbub.tokens import AccessClaims, AccessTokens

_USER = CallerKind.USER

IDEMPOTENCY_KEY_PATTERN = r"[\x21-\x7e]{1,200}"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def request_id(incoming: str | None = None) -> str:
    """The id a request is logged and answered under: the client's own ``X-Request-Id``
    when it is a safe token (8-64 of ``A-Z a-z 0-9 . _ -``), else a new one."""
    if incoming is not None and _SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def verify(tokens: AccessTokens, revocations: Revocations, token: str) -> AccessClaims:
    """The claims of an access token that verifies and whose session and user are not
    revoked; else ``Unauthorized`` (``details.reason`` says why). No I/O. REST's bearer
    token (``hub/auth.py``) and the socket's ``connect``/``refresh`` token both come here.
    """
    claims = tokens.verify(token)
    check_not_revoked(revocations, claims)
    return claims


def check_not_revoked(revocations: Revocations, claims: AccessClaims) -> None:
    """``Unauthorized`` when the deny-list names the claims' session or user (again, for
    a caller that waited on something since ``verify``)."""
    if revocations.is_revoked(claims.sid, claims.sub):
        if revocations.is_deactivated(claims.sub):
            raise Unauthorized("this account was deactivated", reason="deactivated")
        raise Unauthorized("this session has ended; sign in again", reason="revoked")


def caller_of(claims: AccessClaims, ip: str | None) -> Caller:
    """The user caller an access token's claims name."""
    return Caller(
        kind=CallerKind.USER,
        user_id=claims.sub,
        role=claims.role,
        session_id=claims.sid,
        ip=ip,
    )


_UNREACHABLE = frozenset((Access.INTERNAL, Access.SERVICE))


def reachable(op: Operation) -> bool:
    """Whether clients may call ``op`` at all (over REST or RPC)."""
    return op.access not in _UNREACHABLE


def operation(catalog: Catalog, name: str) -> Operation:
    """The operation an RPC names; ``not_found`` if there is none clients may call."""
    return callable_op(catalog.get(name), name)


def callable_op(op: Operation | None, name: str) -> Operation:
    """``operation`` for a catalog entry already looked up (``op``, or None)."""
    if op is None or op.access in _UNREACHABLE:
        raise NotFound(f"unknown method {name!r}")
    return op


def check_access(op: Operation, caller: Caller) -> None:
    if not reachable(op):
        raise NotFound(f"unknown method {op.name!r}")
    if op.access is Access.PUBLIC:
        return
    if caller.kind is not CallerKind.USER:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <access token>'")
    if op.access is Access.ADMIN and caller.role != "admin":
        raise Forbidden("only admins may do this")


def check_idempotency_key(value: str | None) -> str | None:
    """``value`` if absent or well formed (1-200 visible ASCII characters); else
    ``bad_request``."""
    if value is not None and not _IDEMPOTENCY_KEY.fullmatch(value):
        raise BadRequest("an idempotency key is 1-200 visible ASCII characters")
    return value


def admit(op: Operation, caller: Caller, idempotency_key: str | None) -> str | None:
    """Steps 1-3: refuse what ``caller`` may not call; the key to send (None unless
    ``op`` is mutating)."""
    if idempotency_key is None and op.access is Access.USER and caller.kind is _USER:
        return None  # the usual call: a signed-in user, no key (``check_access`` passes)
    check_access(op, caller)
    key = check_idempotency_key(idempotency_key)
    return key if op.mutating else None


def invalid(exc: ValidationError) -> ValidationFailed:
    """pydantic's errors in the wire form (no input echo, no URLs)."""
    return validation_failed_from(exc.errors(include_url=False, include_input=False))  # type: ignore[arg-type]


def validate(op: Operation, params: dict[str, Any]) -> BaseModel:
    try:
        # The schema's validator itself: ``model_validate`` only forwards to it.
        validated: BaseModel = op.params.__pydantic_validator__.validate_python(params)
        return validated
    except ValidationError as exc:
        raise invalid(exc) from None


_NOTHING = b"{}"
_takes_nothing: dict[type[BaseModel], bool] = {}


def takes_nothing(model: type[BaseModel]) -> bool:
    """Whether an empty params dict validates to ``model()``, serialized ``{}``: a model
    with no fields, no validator, serializer or computed field, that ignores or refuses
    extra fields (``NoParams`` refuses them). Such a model's empty params need no
    validation run per call; any others are validated (and refused, or dropped)."""
    known = _takes_nothing.get(model)
    if known is None:
        decorators = model.__pydantic_decorators__
        known = _takes_nothing[model] = (
            not model.model_fields
            and model.model_config.get("extra", "ignore") in ("ignore", "forbid")
            and not any(getattr(decorators, f.name) for f in dataclasses.fields(decorators))
        )
    return known


def _round_trip(measured: metrics.HubMetrics, op: Operation, outcome: str) -> Timing:
    """bus_round_trip's series for (``op``, ``outcome``) in the hub app ``measured``."""
    return measured.bus_round_trip.timing(op.name, outcome)


_OK = "ok"


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return _OK
    return error.code.value if isinstance(error, HubbubError) else "error"


def _call_span(op: Operation, request_id: str, traceparent: str | None) -> tracing.Span | None:
    """The call's span (a child of the HTTP request's, else of ``traceparent``), or None
    when tracing is off."""
    if tracing.tracer is None:
        return None
    return tracing.start_span(
        f"call {op.name}",
        traceparent=traceparent,
        kind=tracing.SpanKind.CLIENT,
        attributes={"hubbub.operation": op.name, "hubbub.request_id": request_id},
    )


def _end_span(span: tracing.Span, outcome: str) -> None:
    if outcome != "ok":
        tracing.failed(span, outcome)
    span.end()


async def send(
    bus: Bus,
    op: Operation,
    params: BaseModel,
    caller: Caller,
    *,
    idempotency_key: str | None,
    request_id: str,
    traceparent: str | None = None,
) -> Reply:
    """Step 5: the admitted, validated call to a worker, its round trip measured (by
    operation and outcome) when a hub app's request or socket made it. With tracing on,
    the call is a span (a child of the HTTP request's, else of ``traceparent``) and the
    worker is told to hang its span under it. With tracing off, the worker is told of
    no trace: ``traceparent`` is a client's header, which must neither decide the
    workers' sampling nor ride on every bus message."""
    start = time.perf_counter()
    error: BaseException | None = None
    span = _call_span(op, request_id, traceparent)
    try:
        return await bus.request(
            op,
            # Only what the caller sent: the worker validates again, and a PATCH's fields
            # that were left out must stay left out (not become nulls).
            params.__pydantic_serializer__.to_json(params, exclude_unset=True),
            caller=caller,
            request_id=request_id,
            idempotency_key=idempotency_key,
            traceparent=None if span is None else tracing.traceparent_of(span),
        )
    except BaseException as exc:
        error = exc
        raise
    finally:
        outcome = _outcome(error)
        measured = metrics.current.get()
        if measured is not None:
            _round_trip(measured, op, outcome).observe(time.perf_counter() - start)
        if span is not None:
            _end_span(span, outcome)


def start(
    bus: Bus,
    op: Operation,
    caller: Caller,
    params: dict[str, Any],
    done: Done,
    *,
    idempotency_key: str | None,
    request_id: str,
    measured: metrics.HubMetrics | None,
) -> None:
    """Steps 1-5 as ``call``, without a task: what steps 1-4 refuse, and a bus that
    cannot send now, raise here; otherwise the call is sent, and ``done`` gets its reply
    or error when it comes (measured in ``measured``, the caller's hub app, and traced as
    ``send`` does)."""
    key = admit(op, caller, idempotency_key)
    if not params and takes_nothing(op.params):
        params_json = _NOTHING  # what validating and serializing {} gives
    else:
        validated = validate(op, params)
        params_json = validated.__pydantic_serializer__.to_json(validated, exclude_unset=True)
    begin = time.perf_counter()
    span = _call_span(op, request_id, None) if tracing.tracer is not None else None

    def finished(reply: Reply | None, error: BaseException | None) -> None:
        if error is None and span is None:  # the usual answer: one series, no span
            if measured is not None:
                ok = measured.bus_round_trip.timing(op.name, _OK)
                ok.observe(time.perf_counter() - begin)
            done(reply, None)
            return
        outcome = _outcome(error)
        if measured is not None:
            _round_trip(measured, op, outcome).observe(time.perf_counter() - begin)
        if span is not None:
            _end_span(span, outcome)
        done(reply, error)

    try:
        bus.start(
            op,
            params_json,
            finished,
            caller=caller,
            request_id=request_id,
            idempotency_key=key,
            traceparent=None if span is None else tracing.traceparent_of(span),
        )
    except BaseException as exc:
        outcome = _outcome(exc)
        if measured is not None:
            _round_trip(measured, op, outcome).observe(time.perf_counter() - begin)
        if span is not None:
            _end_span(span, outcome)
        raise


async def call(
    bus: Bus,
    op: Operation,
    caller: Caller,
    params: dict[str, Any],
    *,
    idempotency_key: str | None,
    request_id: str,
    traceparent: str | None = None,
) -> Reply:
    """Steps 1-5 in order."""
    key = admit(op, caller, idempotency_key)
    validated = validate(op, params)
    return await send(
        bus,
        op,
        validated,
        caller,
        idempotency_key=key,
        request_id=request_id,
        traceparent=traceparent,
    )
