"""Which dependency a failure shows to be away: PostgreSQL, Redis or NATS, or none (a bug,
or a refusal on purpose)."""

from __future__ import annotations

from handlers.db import postgres_outage
from hubbub.dependencies import Outage, nats_outage, redis_outage


def classify(exc: BaseException) -> Outage | None:
    """The dependency whose outage ``exc`` shows, or None."""
    return postgres_outage(exc) or redis_outage(exc) or nats_outage(exc)
