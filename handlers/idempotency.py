"""Idempotency records: a mutation retried with the same key applies once.

The record is claimed with ``INSERT … ON CONFLICT`` inside the mutation's own
transaction. A concurrent retry blocks on the unique key until the first transaction
ends: if it committed, the retry finds the stored response; if it rolled back, the retry
claims the key and does the work itself. So "applied once" holds across worker
processes without any lock outside PostgreSQL. Failed mutations roll back their claim,
so a retry after an error runs again. A record older than ``idempotency_ttl_s`` is taken
over by the claim (a retry after that applies again), whether or not the janitor has
pruned it yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import asyncpg
import orjson
from sqlalchemy import Index, LargeBinary, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from handlers.db import Base, Timestamped, driver_connection
from hubbub.contracts.errors import Unavailable, Unprocessable
from hubbub.dependencies import RETRY_AFTER_S

F = TypeVar("F", bound=Callable[..., Any])


class IdempotencyRecord(Timestamped, Base):
    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(80))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)  # for retention


def request_fingerprint(operation: str, params: object) -> str:
    body = orjson.dumps({"op": operation, "params": params}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


# Run on the transaction's asyncpg connection (``driver_connection``), as written here.
# A record past its time ($5 seconds) is the claim's as much as a missing one. The row the
# claim conflicts with is locked whether or not it is taken over (ON CONFLICT DO UPDATE
# locks it), so the janitor cannot delete it before ``_STORED`` reads it.
_CLAIM = (
    "INSERT INTO idempotency_keys AS held (caller, key, operation, request_hash)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (caller, key) DO UPDATE"
    " SET operation = excluded.operation, request_hash = excluded.request_hash,"
    " response = NULL, completed_at = NULL, created_at = now()"
    " WHERE held.created_at < now() - make_interval(secs => $5) RETURNING key"
)
_STORED = "SELECT request_hash, response FROM idempotency_keys WHERE caller = $1 AND key = $2"
# …and only if it is within its time ($3 seconds): one older is the next claim's to take over.
_STORED_LIVE = _STORED + " AND created_at >= now() - make_interval(secs => $3)"
_COMPLETE = (
    "UPDATE idempotency_keys SET response = $3, completed_at = now() WHERE caller = $1 AND key = $2"
)


async def claim(
    session: AsyncSession,
    *,
    caller: str,
    key: str,
    operation: str,
    fingerprint: str,
    ttl_s: float,
) -> bytes | None:
    """Claim ``key`` for this transaction. Returns the stored response of an earlier
    identical request made less than ``ttl_s`` ago (replay it), or None (go ahead, then
    ``complete``).

    Raises ``Unprocessable`` when the key was used for a different request.
    """
    conn = await driver_connection(session)
    while True:
        if await conn.fetchval(_CLAIM, caller, key, operation, fingerprint, ttl_s) is not None:
            return None
        # The other claim has committed (a claim waits for a concurrent one to end): its
        # row, which this claim has locked. Should it be gone all the same, claim again.
        record = await conn.fetchrow(_STORED, caller, key)
        if record is not None:
            break
    if record["request_hash"] != fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request",
            idempotency_key=key,
        )
    response: bytes | None = record["response"]
    assert response is not None  # committed claims always carry their response
    return response


async def complete(session: AsyncSession, *, caller: str, key: str, response: bytes) -> None:
    """Store the response on the claimed record: one UPDATE, no read (the claim is this
    transaction's own row)."""
    conn = await driver_connection(session)
    await conn.execute(_COMPLETE, caller, key, response)


# --- handlers that claim and complete their key in their own statements ------------------

# Handlers marked ``claims_itself``: the runtime hands them the ``Claim`` (``ctx.claim``)
# instead of claiming and completing the key in statements of its own.
SELF_CLAIMING: set[object] = set()


def claims_itself(handler: F) -> F:
    """Mark a hot handler that is its request's whole unit of work and writes its change,
    its idempotency record (if the request has a key) and its response in one statement.

    The runtime then claims nothing itself: it hands the handler a ``Claim``
    (``ctx.claim``, also without a key) and takes the response the handler sets on it. The
    handler must insert the record (``INSERT … ON CONFLICT``, as ``claim`` does: taking
    over one older than ``claim.ttl_s``), with the response, and write its change only if
    that inserted (or took over) a row; if not, ``await replay(conn, claim)``."""
    SELF_CLAIMING.add(handler)
    return handler


@dataclass(slots=True)
class Claim:
    """The request a ``claims_itself`` handler serves: its idempotency key (None: it has
    none), whose keys (``caller``), the operation and the request's fingerprint;
    ``serialize`` makes the response body of a result, as the runtime would; ``ttl_s``:
    how long a record holds its key; ``response``: the body, set by the handler."""

    caller: str
    key: str | None
    operation: str
    fingerprint: str
    serialize: Callable[[Any], bytes]
    ttl_s: float  # a record older than this is taken over, as ``claim`` does
    response: bytes | None = None


class Replay(Exception):
    """The key was claimed and completed by an earlier identical request: its response."""

    def __init__(self, response: bytes) -> None:
        super().__init__("replay")
        self.response = response


async def replay(conn: asyncpg.Connection, claim: Claim) -> NoReturn:
    """Raise ``Replay`` with the stored response of the request that claimed the key
    first, or ``Unprocessable`` when that was a different request."""
    record = await conn.fetchrow(_STORED, claim.caller, claim.key)
    if record is None:
        # Pruned since the statement that met it (autocommit: nothing held it): nothing
        # was applied, and a retry claims the key.
        raise Unavailable(
            "this request's idempotency key expired as it was claimed; retry",
            retry_after=RETRY_AFTER_S,
        )
    replayed(record, claim)


async def stored(conn: asyncpg.Connection, claim: Claim) -> None:
    """``replay`` if the key was claimed already, less than ``claim.ttl_s`` ago (one
    older, pruned or not, no longer holds its key); else nothing."""
    if claim.key is not None:
        record = await conn.fetchrow(_STORED_LIVE, claim.caller, claim.key, claim.ttl_s)
        if record is not None:
            replayed(record, claim)


def replayed(record: Any, claim: Claim) -> NoReturn:
    """``Replay`` the stored response ``record`` of ``claim``'s key, or ``Unprocessable``."""
    if record["request_hash"] != claim.fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request",
            idempotency_key=claim.key,
        )
    assert record["response"] is not None  # committed claims always carry their response
    raise Replay(record["response"])
