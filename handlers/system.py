"""System handlers: readiness checks PostgreSQL and Redis from a worker."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Awaitable

from sqlalchemy import text

from handlers.context import Context
from handlers.registry import Registry
from hubbub.contracts.api import system as api
from hubbub.contracts.api.system import ComponentStatus, WorkerReadiness
from hubbub.contracts.operations import NoParams

registry = Registry()


@registry.handler(api.ready)
async def ready(ctx: Context, params: NoParams) -> WorkerReadiness:
    return WorkerReadiness(
        worker=f"{socket.gethostname()}:{os.getpid()}",
        postgres=await _timed(_ping_postgres(ctx)),
        redis=await _timed(ctx.redis.ping()),
    )


async def _ping_postgres(ctx: Context) -> None:
    # Its own session: a failed check must not leave the request's transaction broken.
    async with ctx.sessions() as session:
        await session.execute(text("SELECT 1"))


async def _timed(check: Awaitable[object]) -> ComponentStatus:
    start = time.perf_counter()
    try:
        await check
    except Exception as exc:
        return ComponentStatus(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
    return ComponentStatus(ok=True, latency_ms=round((time.perf_counter() - start) * 1000, 2))
