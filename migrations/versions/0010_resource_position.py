"""Card order: ``resources.position``, an order key within the resource's column.

Existing resources get keys per (workspace, status) in the order they were created
(then by id): ``a0``, ``a1``, … ``az``, ``b00``, … — what fractional-indexing's
``generateKeyBetween(previous, null)`` makes one after another, so the browser's
library can put new cards between them. The column compares in the "C" collation (byte
order, like the browser's string comparison).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BATCH = 1000


def nth_key(n: int) -> str:
    """The ``n``-th key (from 0) of repeated ``generateKeyBetween(previous, null)``
    from nothing: the integers ``a0``…``az`` (62), ``b00``…``bzz`` (62²), and so on."""
    width = 1
    while n >= len(DIGITS) ** width:
        n -= len(DIGITS) ** width
        width += 1
    digits = []
    for _ in range(width):
        n, d = divmod(n, len(DIGITS))
        digits.append(DIGITS[d])
    return chr(ord("a") + width - 1) + "".join(reversed(digits))


def upgrade() -> None:
    op.add_column("resources", sa.Column("position", sa.Text(collation="C"), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, row_number() OVER (PARTITION BY workspace_id, status"
            " ORDER BY created_at, id) - 1 AS n FROM resources"
        )
    ).all()
    update = sa.text("UPDATE resources SET position = :position WHERE id = :id")
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        conn.execute(update, [{"id": r.id, "position": nth_key(r.n)} for r in batch])
    op.alter_column("resources", "position", nullable=False)
    op.create_index(
        "ix_resources_workspace_status_position",
        "resources",
        ["workspace_id", "status", "position", "id"],
        unique=False,
    )
    op.create_index(
        "ix_resources_workspace_position",
        "resources",
        ["workspace_id", "position", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_resources_workspace_position", table_name="resources")
    op.drop_index("ix_resources_workspace_status_position", table_name="resources")
    op.drop_column("resources", "position")
