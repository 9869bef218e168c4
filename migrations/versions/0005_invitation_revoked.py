"""Invitations can be revoked: the status ``revoked``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "workspace_invitations"
CONSTRAINT = "ck_workspace_invitations_status"
BEFORE = "status IN ('pending', 'accepted', 'declined', 'replaced')"
AFTER = "status IN ('pending', 'accepted', 'declined', 'replaced', 'revoked')"


def upgrade() -> None:
    op.drop_constraint(op.f(CONSTRAINT), TABLE, type_="check")
    op.create_check_constraint(op.f(CONSTRAINT), TABLE, AFTER)


def downgrade() -> None:
    # A revoked invitation can no longer be answered, as a replaced one can't.
    op.execute("UPDATE workspace_invitations SET status = 'replaced' WHERE status = 'revoked'")
    op.drop_constraint(op.f(CONSTRAINT), TABLE, type_="check")
    op.create_check_constraint(op.f(CONSTRAINT), TABLE, BEFORE)
