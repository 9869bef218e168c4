"""Hubbub's error model: one stable machine word per failure, shared by REST, WS and NATS.

The tree of exceptions (each carries ``code``, ``status``, ``message``, ``details``)::

    HubbubError               500 internal             base; an unknown failure
    ├── BadRequest            400 bad_request          malformed: bad JSON, unknown op
    ├── ValidationFailed      422 validation_failed    wrong shape; details.errors
    ├── Unauthorized          401 unauthorized         no, bad or expired credentials
    ├── Forbidden             403 forbidden            authenticated, not allowed
    ├── NotFound              404 not_found            absent, or hidden from this caller
    ├── MethodNotAllowed      405 method_not_allowed   REST: the path exists, not this method
    ├── Conflict              409 conflict             state changed under you; a stale
    │                                                  expected_version (RPC)
    ├── PreconditionFailed    412 precondition_failed  If-Match did not match (REST: the
    │                                                  hub's form of a stale version)
    ├── RequestTimeout        408 request_timeout      REST: the body did not arrive in time
    ├── TooLarge              413 too_large            body or frame over its limit
    ├── Unprocessable         422 unprocessable        idempotency key reused, other body
    ├── RateLimited           429 rate_limited         details.retry_after (seconds)
    ├── Internal              500 internal             a bug; never leaks internals
    ├── BadGateway            502 bad_gateway          a worker's reply failed validation
    ├── Unavailable           503 unavailable          no worker answered, or mailbox full
    └── Timeout               504 timeout              no reply before the deadline

Codes are the contract; messages are for humans and may change.

A stale version is one failure with two faces: handlers raise ``stale_version(...)`` — a
``Conflict`` with ``details.reason == "stale_version"`` — whatever the transport; the
REST edge turns it into ``PreconditionFailed`` (412) when the version came from
``If-Match``, as HTTP asks, and WebSocket RPC passes the 409 on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    VALIDATION_FAILED = "validation_failed"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PRECONDITION_FAILED = "precondition_failed"
    REQUEST_TIMEOUT = "request_timeout"
    TOO_LARGE = "too_large"
    UNPROCESSABLE = "unprocessable"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    BAD_GATEWAY = "bad_gateway"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"


STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.VALIDATION_FAILED: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNPROCESSABLE: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.BAD_GATEWAY: 502,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
}

TITLE_OF: dict[ErrorCode, str] = {
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.VALIDATION_FAILED: "Validation failed",
    ErrorCode.UNAUTHORIZED: "Unauthorized",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.NOT_FOUND: "Not found",
    ErrorCode.METHOD_NOT_ALLOWED: "Method not allowed",
    ErrorCode.CONFLICT: "Conflict",
    ErrorCode.PRECONDITION_FAILED: "Precondition failed",
    ErrorCode.REQUEST_TIMEOUT: "Request timeout",
    ErrorCode.TOO_LARGE: "Payload too large",
    ErrorCode.UNPROCESSABLE: "Unprocessable request",
    ErrorCode.RATE_LIMITED: "Too many requests",
    ErrorCode.INTERNAL: "Internal error",
    ErrorCode.BAD_GATEWAY: "Bad gateway",
    ErrorCode.UNAVAILABLE: "Service unavailable",
    ErrorCode.TIMEOUT: "Timed out",
}


class HubbubError(Exception):
    """A failure with a stable code; safe to show to the caller."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    default_message: ClassVar[str] = "internal error"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details: dict[str, Any] = details
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return STATUS_OF[self.code]

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code.value,
            "message": self.message,
            "status": self.status,
        }
        if self.details:
            body["details"] = self.details
        return body

    @staticmethod
    def from_dict(data: dict[str, Any]) -> HubbubError:
        """Rebuild the typed error from its wire form; unknown codes become Internal."""
        try:
            code = ErrorCode(str(data.get("code")))
        except ValueError:
            code = ErrorCode.INTERNAL
        cls = ERROR_CLASSES[code]
        details = data.get("details")
        error = cls(str(data.get("message") or cls.default_message))
        if isinstance(details, dict):
            error.details = details
        return error

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, details={self.details!r})"


class BadRequest(HubbubError):
    code = ErrorCode.BAD_REQUEST
    default_message = "bad request"


class ValidationFailed(HubbubError):
    code = ErrorCode.VALIDATION_FAILED
    default_message = "validation failed"


class Unauthorized(HubbubError):
    code = ErrorCode.UNAUTHORIZED
    default_message = "authentication required"


class Forbidden(HubbubError):
    code = ErrorCode.FORBIDDEN
    default_message = "not allowed"


class NotFound(HubbubError):
    code = ErrorCode.NOT_FOUND
    default_message = "not found"


class MethodNotAllowed(HubbubError):
    """``details.allow`` lists the methods the path takes (also sent as ``Allow``)."""

    code = ErrorCode.METHOD_NOT_ALLOWED
    default_message = "method not allowed"


class Conflict(HubbubError):
    code = ErrorCode.CONFLICT
    default_message = "conflict"


class PreconditionFailed(HubbubError):
    code = ErrorCode.PRECONDITION_FAILED
    default_message = "precondition failed"


class RequestTimeout(HubbubError):
    """The client did not send its whole request before the hub's deadline."""

    code = ErrorCode.REQUEST_TIMEOUT
    default_message = "the request did not arrive in time"


class TooLarge(HubbubError):
    code = ErrorCode.TOO_LARGE
    default_message = "payload too large"


class Unprocessable(HubbubError):
    code = ErrorCode.UNPROCESSABLE
    default_message = "unprocessable request"


class RateLimited(HubbubError):
    code = ErrorCode.RATE_LIMITED
    default_message = "too many requests"

    @property
    def retry_after(self) -> int:
        return max(1, int(self.details.get("retry_after", 1)))


class Internal(HubbubError):
    code = ErrorCode.INTERNAL
    default_message = "internal error"


class BadGateway(HubbubError):
    code = ErrorCode.BAD_GATEWAY
    default_message = "a worker sent a malformed reply"


# ``details.reason`` of an ``unavailable`` refusal of work that never started (a full
# mailbox, no transaction slot in time, a draining worker's queue): the hub's bus sends
# such a request to another worker, whatever it does.
NOT_STARTED = "busy"


class Unavailable(HubbubError):
    """Every one says when to try again: ``details.retry_after`` (seconds; 1 unless the
    raiser knows better), sent as ``Retry-After`` on REST and in WS error frames."""

    code = ErrorCode.UNAVAILABLE
    default_message = "service unavailable"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        details.setdefault("retry_after", 1)
        super().__init__(message, **details)

    @property
    def retry_after(self) -> int:
        value = self.details.get("retry_after")
        return max(1, int(value)) if isinstance(value, int | float) else 1


class Timeout(HubbubError):
    code = ErrorCode.TIMEOUT
    default_message = "timed out"


ERROR_CLASSES: dict[ErrorCode, type[HubbubError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        ValidationFailed,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PreconditionFailed,
        RequestTimeout,
        TooLarge,
        Unprocessable,
        RateLimited,
        Internal,
        BadGateway,
        Unavailable,
        Timeout,
    )
}


STALE_VERSION = "stale_version"


def stale_version(what: str, *, current: int, expected: int) -> Conflict:
    """The entity changed since the caller read it (``expected`` is not ``current``)."""
    return Conflict(
        f"the {what} has changed (version {current}, you expected {expected}); "
        "read it again and retry",
        reason=STALE_VERSION,
        current_version=current,
        expected_version=expected,
    )


def is_stale_version(error: HubbubError) -> bool:
    return isinstance(error, Conflict) and error.details.get("reason") == STALE_VERSION


def _without_union_members(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors located as in the client's input: without union members.

    An optional field (``X | None``, every PATCH field) that fails is reported once per
    member of its union: at ``(field, "<X's validator>")`` and, with ``Input should be
    None``, at ``(field, "none")``. Such a None branch's error means the value was not
    null, so it is dropped (X's error says what is wrong), and so is the member's label
    after the field in the others' locations. Labels elsewhere stay: a part of a location
    that looks like one (``list[1]``) may be a key of the client's own data."""
    located = [(tuple(e.get("loc", ())), e) for e in errors]
    unions = sorted(
        {
            loc[:-1]
            for loc, e in located
            if e.get("type") == "none_required" and loc[-1:] == ("none",)
        },
        key=len,
        reverse=True,  # the innermost first: the outer members' places stay where they are
    )
    kept: list[dict[str, Any]] = []
    for loc, error in located:
        field = loc[:-1]
        if (
            error.get("type") == "none_required"
            and field in unions
            and any(other is not error and at[: len(field)] == field for at, other in located)
        ):
            continue
        parts = list(loc)
        for union in unions:
            if len(parts) > len(union) and tuple(parts[: len(union)]) == union:
                del parts[len(union)]
        kept.append({**error, "loc": parts})
    return kept


# An answer no bigger than its request's mistakes need: a body of 60,000 unknown keys
# would otherwise be answered with 60,000 errors, each echoing its key (about 5 MB).
MAX_REPORTED_ERRORS = 20
MAX_LOCATION_PART = 64  # characters of one location part (a key the client chose)


def validation_failed_from(errors: list[dict[str, Any]]) -> ValidationFailed:
    """Turn pydantic's error list into the stable wire form (no input echo, no URLs, no
    union members in a location: ``_without_union_members``): the first
    ``MAX_REPORTED_ERRORS``, and how many more there were (``more``)."""
    kept = _without_union_members(errors)
    cleaned = [
        {
            "loc": [_location_part(p) for p in e.get("loc", ())],
            "msg": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in kept[:MAX_REPORTED_ERRORS]
    ]
    first = cleaned[0] if cleaned else None
    message = (
        f"{'.'.join(first['loc']) or 'body'}: {first['msg']}" if first else "validation failed"
    )
    more = len(kept) - len(cleaned)
    if more:
        return ValidationFailed(message, errors=cleaned, more=more)
    return ValidationFailed(message, errors=cleaned)


def _location_part(part: object) -> str:
    text = str(part)
    if len(text) > MAX_LOCATION_PART:
        return text[: MAX_LOCATION_PART - 1] + "…"
    return text
