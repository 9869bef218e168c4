"""Indexes for retention (``handlers/retention.py``): each rule finds its rows by an index
instead of reading the whole table every batch.

Built in the migration's transaction, which blocks writes to each table while its index
is built. On large tables, build them beforehand with ``CREATE INDEX CONCURRENTLY`` and
the same names and definitions: the migration then leaves them as they are.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, columns or an expression, partial index predicate)
INDEXES: list[tuple[str, str, list[str | sa.TextClause], str | None]] = [
    ("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], None),
    ("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"], None),
    ("ix_password_reset_tokens_expires_at", "password_reset_tokens", ["expires_at"], None),
    (
        "ix_email_verification_tokens_expires_at",
        "email_verification_tokens",
        ["expires_at"],
        None,
    ),
    ("ix_auth_sessions_revoked_at", "auth_sessions", ["revoked_at"], "revoked_at IS NOT NULL"),
    (
        "ix_auth_sessions_last_used",
        "auth_sessions",
        [sa.text("coalesce(last_refreshed_at, created_at)")],
        None,
    ),
    ("ix_outbox_published_at", "outbox", ["published_at"], "published_at IS NOT NULL"),
    ("ix_outbox_failed_at", "outbox", ["failed_at"], "failed_at IS NOT NULL"),
    ("ix_dev_mail_created_at", "dev_mail", ["created_at"], None),
    ("ix_mail_queue_failed_at", "mail_queue", ["failed_at"], "failed_at IS NOT NULL"),
]


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        op.create_index(
            name,
            table,
            columns,
            unique=False,
            if_not_exists=True,
            postgresql_where=sa.text(where) if where else None,
        )


def downgrade() -> None:
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)
