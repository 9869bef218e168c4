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
from sqlalchemy import LargeBinary, String, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from handlers.db import Base, Timestamped
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


async def claim(
    session: AsyncSession, *, caller: str, key: str, operation: str, fingerprint: str
) -> bytes | None:
    """Claim ``key`` for this transaction. Returns the stored response of an earlier
    identical request (replay it), or None (go ahead, then ``complete``).

    Raises ``Unprocessable`` when the key was used for a different request.
    """
    claimed = await session.execute(
        insert(IdempotencyRecord)
        .values(caller=caller, key=key, operation=operation, request_hash=fingerprint)
        .on_conflict_do_nothing()
        .returning(IdempotencyRecord.key)
    )
    if claimed.first() is not None:
        return None
    record = (
        await session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.caller == caller, IdempotencyRecord.key == key
            )
        )
    ).scalar_one()
    if record.request_hash != fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request",
            idempotency_key=key,
        )
    assert record.response is not None  # committed claims always carry their response
    return record.response


async def complete(session: AsyncSession, *, caller: str, key: str, response: bytes) -> None:
    """Store the response on the claimed record: one UPDATE, no read (the claim is this
    transaction's own row)."""
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.caller == caller, IdempotencyRecord.key == key)
        .values(response=response, completed_at=func.now())
        .execution_options(synchronize_session=False)
    )
