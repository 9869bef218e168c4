"""The operator's commands that act on the services or the state folder, not through a
hub: ``system`` (``migrate``, ``check``), ``accounts`` (``user create``, ``mail``),
``apikeys`` (``apikey …``) and ``services`` (``service …``, ``nats-auth``).

What they share is here: a database session that lives as long as the command, and the
way a command says no.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from hubbub.config import ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

# How long a command tries to reach NATS (each attempt up to NATS_ATTEMPT_S) before it
# says it cannot: a person waits for it.
NATS_CONNECT_S = 5.0
NATS_ATTEMPT_S = 3


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on an engine of one connection, disposed of when the block ends: a
    command makes a few statements and exits. The caller commits what it changes."""
    if not settings.database_url:
        raise ConfigError(
            "DATABASE_URL is not set, and no `hubbub up` is running on this state folder"
        )
    from handlers.db import create_engine, session_factory

    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


def refuse(message: str, code: int = 2) -> int:
    """Say why a command did nothing, on standard error; return its exit code."""
    print(f"hubbub: {message}", file=sys.stderr)
    return code
