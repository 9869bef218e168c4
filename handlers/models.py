"""Every table, imported in one place so Alembic and the tests see the whole schema."""

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
from handlers.workspaces.models import Activity, Invitation, Member, Workspace

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
