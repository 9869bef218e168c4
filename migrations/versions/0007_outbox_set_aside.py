"""Outbox rows that can never be published are set aside (``failed_at``, ``last_error``)
instead of stopping every event behind them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_outbox_unpublished"
BEFORE = "published_at IS NULL"
AFTER = "published_at IS NULL AND failed_at IS NULL"


def upgrade() -> None:
    op.add_column("outbox", sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("last_error", sa.String(length=500), nullable=True))
    op.drop_index(INDEX, table_name="outbox", postgresql_where=sa.text(BEFORE))
    op.create_index(INDEX, "outbox", ["id"], unique=False, postgresql_where=sa.text(AFTER))


def downgrade() -> None:
    # Without the columns, a set-aside row would be unpublished again and block the relay.
    op.execute("DELETE FROM outbox WHERE failed_at IS NOT NULL")
    op.drop_index(INDEX, table_name="outbox", postgresql_where=sa.text(AFTER))
    op.create_index(INDEX, "outbox", ["id"], unique=False, postgresql_where=sa.text(BEFORE))
    op.drop_column("outbox", "last_error")
    op.drop_column("outbox", "failed_at")
