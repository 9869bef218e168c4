"""The operator's commands that act on the services or the state folder, not through a
hub: ``system`` (``migrate``, ``check``), ``accounts`` (``user create``, ``mail``),
``apikeys`` (``apikey …``) and ``services`` (``service …``, ``nats-auth``).

What they share is here: a database session that lives as long as the command, a NATS
connection tried as long as a person waits, and the way a command says no.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from hubbub.config import ConfigError, Settings

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
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


async def command_nats(settings: Settings, name: str) -> NATS:
    """A command's connection to ``NATS_URL`` (set), as its role: tried for
    ``NATS_CONNECT_S``, then ``NatsUnavailable`` naming the last error, which the
    command's one line says (no warnings meanwhile)."""
    from hubbub.natsauth import nats_auth
    from hubbub.natsconn import connect_nats

    assert settings.nats_url
    return await connect_nats(
        settings.nats_url,
        name,
        auth=nats_auth(settings),
        connect_timeout=NATS_ATTEMPT_S,
        first_connect_s=NATS_CONNECT_S,
        warn_while_connecting=False,
    )


def refuse(message: str, code: int = 2) -> int:
    """Say why a command did nothing, on standard error; return its exit code."""
    print(f"hubbub: {message}", file=sys.stderr)
    return code
