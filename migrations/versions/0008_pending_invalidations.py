"""Pending Redis invalidations: kept until a worker has done them (handlers/invalidations.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_invalidations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "due_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_invalidations")),
    )
    op.create_index(
        op.f("ix_pending_invalidations_due_at"), "pending_invalidations", ["due_at"], unique=False
    )


def downgrade() -> None:
    # Rows still pending are dropped with the table: their entries expire by their TTL.
    op.drop_index(op.f("ix_pending_invalidations_due_at"), table_name="pending_invalidations")
    op.drop_table("pending_invalidations")
