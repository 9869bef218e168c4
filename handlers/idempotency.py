"""Idempotency records: a mutation retried with the same key applies once.

The record is claimed with ``INSERT … ON CONFLICT DO NOTHING`` inside the mutation's own
transaction. A concurrent retry blocks on the unique key until the first transaction
ends: if it committed, the retry finds the stored response; if it rolled back, the retry
claims the key and does the work itself. So "applied once" holds across worker
processes without any lock outside PostgreSQL. Failed mutations roll back their claim,
so a retry after an error runs again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import orjson
from sqlalchemy import LargeBinary, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from handlers.db import Base, Timestamped, driver_connection
from hubbub.contracts.errors import Unprocessable


class IdempotencyRecord(Timestamped, Base):
    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(80))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


def request_fingerprint(operation: str, params: object) -> str:
    body = orjson.dumps({"op": operation, "params": params}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


# Run on the transaction's asyncpg connection (``driver_connection``), as written here.
_CLAIM = (
    "INSERT INTO idempotency_keys (caller, key, operation, request_hash)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING key"
)
_STORED = "SELECT request_hash, response FROM idempotency_keys WHERE caller = $1 AND key = $2"
_COMPLETE = (
    "UPDATE idempotency_keys SET response = $3, completed_at = now() WHERE caller = $1 AND key = $2"
)


async def claim(
    session: AsyncSession, *, caller: str, key: str, operation: str, fingerprint: str
) -> bytes | None:
    """Claim ``key`` for this transaction. Returns the stored response of an earlier
    identical request (replay it), or None (go ahead, then ``complete``).

    Raises ``Unprocessable`` when the key was used for a different request.
    """
    conn = await driver_connection(session)
    if await conn.fetchval(_CLAIM, caller, key, operation, fingerprint) is not None:
        return None
    # The other claim has committed (a claim waits for a concurrent one to end): its row.
    record = await conn.fetchrow(_STORED, caller, key)
    assert record is not None  # a rolled-back claim would have let this one in
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
