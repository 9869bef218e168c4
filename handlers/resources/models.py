"""The ``resources`` table: a workspace's business records.

``search`` is a generated ``tsvector`` over the title (weight A) and the body (weight B),
indexed with GIN, for full-text search. Keyset pagination walks the indexes
``(workspace_id, <sort column>, id)``; ``id`` breaks ties, so every row has one place
in every order.

``position`` is the card's order key within its column (``status``), in the "C"
collation so that PostgreSQL compares keys byte by byte as the browser does. The board's
order is served by ``(workspace_id, status, position, id)`` — a column's cards, and its
last key for a new card — and ``(workspace_id, position, id)`` for the whole board.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Computed, ForeignKey, Index, Integer, String, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from handlers.db import Base

SEARCH_CONFIG = "english"
SEARCH_EXPRESSION = (
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, title), 'A') || "
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, body), 'B')"
)


class Resource(Base):
    __tablename__ = "resources"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, server_default=text("''"))
    status: Mapped[str] = mapped_column(String(32))
    position: Mapped[str] = mapped_column(Text(collation="C"))
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(String(40)), server_default=text("'{}'::varchar[]")
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    search: Mapped[Any] = mapped_column(
        TSVECTOR, Computed(SEARCH_EXPRESSION, persisted=True), deferred=True
    )

    __table_args__ = (
        Index("ix_resources_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_resources_workspace_updated", "workspace_id", "updated_at", "id"),
        Index("ix_resources_workspace_title", "workspace_id", "title", "id"),
        Index("ix_resources_workspace_status_position", "workspace_id", "status", "position", "id"),
        Index("ix_resources_workspace_position", "workspace_id", "position", "id"),
        Index("ix_resources_search", "search", postgresql_using="gin"),
        Index("ix_resources_tags", "tags", postgresql_using="gin"),
    )
