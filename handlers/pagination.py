"""Opaque keyset cursors: the sort values and id of the last item of a page.

A cursor is base64url of a small JSON array ``[scope, value..., id]``; ``scope`` names
the listing and its order, so a cursor from one listing (or one sort) is refused by
another instead of silently paging wrongly. The next page is the rows strictly after
that key in the listing's total order (the id breaks ties), so rows inserted or deleted
meanwhile never shift a page: nothing is repeated, and nothing that existed all along is
skipped.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from hubbub.contracts.errors import BadRequest


def encode_cursor(scope: str, *values: Any) -> str:
    raw = orjson.dumps([scope, *values], default=str)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str, arity: int) -> list[Any]:
    """The values of a cursor made by ``encode_cursor(scope, <arity values>)``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        decoded = None
    if (
        not isinstance(decoded, list)
        or len(decoded) != arity + 1
        or decoded[0] != scope
        or any(v is not None and not isinstance(v, str | int) for v in decoded[1:])
    ):
        raise _refuse()
    return decoded[1:]


def _refuse() -> BadRequest:
    return BadRequest(
        "the cursor is not one this listing (with this sort) returned", field="cursor"
    )


# What PostgreSQL can compare a cursor's value with: a bigint, a text without NUL, a
# timestamptz that stays within datetime's range in UTC. Past these a made-up cursor
# would fail in the driver or the server (a 500), not as the bad input it is.
_BIGINT = range(-(2**63), 2**63)


def cursor_time(value: object) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
        if parsed.tzinfo is None:
            raise ValueError("no time zone")
        parsed.astimezone(UTC)  # what the driver does with it: may leave datetime's range
    except (ValueError, OverflowError):
        raise _refuse() from None
    return parsed


def cursor_uuid(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise _refuse() from None


def cursor_int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value not in _BIGINT:
        raise _refuse()
    return value


def cursor_str(value: object) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise _refuse()
    return value
