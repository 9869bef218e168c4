"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from handlers.db import Base
from handlers.idempotency import IdempotencyRecord
from handlers.outbox import OutboxEvent

__all__ = ["Base", "IdempotencyRecord", "OutboxEvent"]
