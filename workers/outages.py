"""A worker's view of its dependencies: which failure is an outage of which, and how to
tell that one is back."""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.outages import classify
from hubbub.dependencies import NATS, POSTGRES, REDIS, Health, Outage

__all__ = ["classify", "record", "worker_health"]


def record(health: Health, outage: Outage, exc: BaseException) -> None:
    """Tell ``health`` about an outage. NATS's are left out: the connection itself logs
    its disconnect and reconnect (``hubbub/natsconn.py``), once each."""
    if outage.dependency != NATS:
        health.failed(outage, exc)


def worker_health(engine: AsyncEngine, redis: Redis) -> Health:
    """A tracker whose probes are a ``SELECT 1`` and a ``PING`` (NATS reconnects, and
    says so, by itself: ``hubbub/natsconn.py``)."""

    async def ping_postgres() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def ping_redis() -> None:
        await redis.ping()

    return Health({POSTGRES: ping_postgres, REDIS: ping_redis})
