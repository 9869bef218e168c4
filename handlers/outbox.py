"""The transactional outbox: events written in the same transaction as the change.

A relay in the workers publishes unpublished rows to JetStream with the row id as
``Nats-Msg-Id`` and then marks them published, so an event exists exactly when its
change committed, and a re-sent row is de-duplicated by JetStream.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from handlers.db import Base, Timestamped


class OutboxEvent(Timestamped, Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(80))
    event_type: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # Set aside: this row can never be published (workers/relay.py says when, and why).
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)

    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL AND failed_at IS NULL"),
        ),
        # What retention looks for (handlers/retention.py): published or set aside long ago.
        Index(
            "ix_outbox_published_at",
            "published_at",
            postgresql_where=text("published_at IS NOT NULL"),
        ),
        Index("ix_outbox_failed_at", "failed_at", postgresql_where=text("failed_at IS NOT NULL")),
    )
