"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from handlers.accounts.models import AuthSession, PasswordResetToken, RefreshToken, User
from handlers.apikeys import ApiKey
from handlers.db import Base
from handlers.idempotency import IdempotencyRecord
from handlers.mail import DevMail
from handlers.outbox import OutboxEvent

__all__ = [
    "ApiKey",
    "AuthSession",
    "Base",
    "DevMail",
    "IdempotencyRecord",
    "OutboxEvent",
    "PasswordResetToken",
    "RefreshToken",
    "User",
]
