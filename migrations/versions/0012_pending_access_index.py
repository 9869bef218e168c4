"""A partial index of the pending invalidations that take access away, for
``access.pending`` (handlers/workspaces/channels.py): it pages through those rows in id
order, and during a long Redis outage the table fills with rows of other kinds (cache
bumps) that a walk of the primary key reads past.

The table holds only what still waits for Redis, so it is small but for such outages;
on a large one, build the index beforehand with ``CREATE INDEX CONCURRENTLY`` and the
same name and definition: the migration then leaves it as it is.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The kinds as written then (handlers/workspaces/channels.py, ACCESS_KINDS): a migration does
# not follow later renames.
WHERE = "kind IN ('revoked_sessions', 'user_access', 'channel_acl')"


def upgrade() -> None:
    op.create_index(
        "ix_pending_invalidations_access",
        "pending_invalidations",
        ["id"],
        unique=False,
        if_not_exists=True,
        postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_pending_invalidations_access", table_name="pending_invalidations")
