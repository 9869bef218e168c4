"""Every table, imported in one place so Alembic and the tests see the whole schema; and
the indexes that belong to a query of another module than their table's."""

from sqlalchemy import Index

from handlers.accounts.models import (
    AuthSession,
    EmailVerificationToken,
    PasswordResetToken,
    RefreshToken,
    User,
)
from handlers.apikeys import ApiKey
from handlers.db import Base
from handlers.idempotency import IdempotencyRecord
from handlers.invalidations import PendingInvalidation
from handlers.mail import DevMail
from handlers.outbox import OutboxEvent
from handlers.resources.models import Resource
from handlers.workspaces.channels import ACCESS_KINDS
from handlers.workspaces.models import Activity, Invitation, Member, Workspace

# ``access.pending`` (handlers/workspaces/channels.py) reads only the pending
# invalidations that take access away, in id order: by this index, not past the rows of
# other kinds (cache bumps) that pile up during a long Redis outage (migration 0012).
Index(
    "ix_pending_invalidations_access",
    PendingInvalidation.id,
    postgresql_where=PendingInvalidation.kind.in_(ACCESS_KINDS),
)

__all__ = [
    "Activity",
    "ApiKey",
    "AuthSession",
    "Base",
    "DevMail",
    "EmailVerificationToken",
    "IdempotencyRecord",
    "Invitation",
    "Member",
    "OutboxEvent",
    "PasswordResetToken",
    "PendingInvalidation",
    "RefreshToken",
    "Resource",
    "User",
    "Workspace",
]
