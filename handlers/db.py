"""The database layer's foundations: declarative base, naming conventions, engine, and
which failures mean that PostgreSQL is unreachable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import DateTime, MetaData, event, func
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from hubbub.dependencies import POSTGRES, Outage, causes, raised_in

CONNECT_TIMEOUT_S = 5  # asyncpg's default is 60: an unreachable host would hold requests

# Stable constraint names, so Alembic migrations can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 10, **kwargs: Any
) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # No pre-ping: it costs a round trip on every checkout, i.e. every request. A
        # connection the server closed (a restart) is known to be closed without asking
        # and is replaced at checkout (``_discard_closed``); one that dies under a
        # statement fails it, and SQLAlchemy then invalidates the pool (is_disconnect).
        # Recycling bounds how old a connection gets.
        pool_recycle=1800,
        connect_args={
            "timeout": CONNECT_TIMEOUT_S,
            # A statement that runs this long is a bug or a lock pile-up: fail it.
            "server_settings": {"statement_timeout": "30000", "application_name": "hubbub"},
        },
        # JSON columns in and out with orjson, like every other JSON here. jsonb keeps
        # numbers as exact decimals: a float like 1e29 comes back as a 30-digit integer,
        # which the stdlib would turn into a Python int that orjson cannot write (the relay
        # would stall on it); orjson reads it back as the float it was.
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        **kwargs,
    )
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed)
    return engine


def _discard_closed(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """A pooled connection whose server went away (PostgreSQL restarted while it sat in
    the pool) is replaced before use instead of failing the request that drew it.

    asyncpg notices a closed socket by itself, so the check is a flag, not a round trip;
    ``DisconnectionError`` makes the pool drop the connection and draw another.
    """
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


# Raised by asyncpg when the server cannot be reached or is going away.
_PG_DOWN = (
    asyncpg.PostgresConnectionError,  # class 08: connection failure, does not exist …
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01: terminated by a shutdown
    asyncpg.CrashShutdownError,  # 57P02
)
# It answers, but has no room: 503 all the same, not an outage.
_PG_SATURATED = (
    asyncpg.TooManyConnectionsError,  # 53300
    sa_exc.TimeoutError,  # the engine's own pool: no connection free in time
)


def postgres_outage(exc: BaseException) -> Outage | None:
    """Whether ``exc`` means PostgreSQL is unreachable (or saturated), whatever wraps it:
    a refused or reset connect, a connection closed under a statement, a server shutting
    down, SQLAlchemy's disconnect errors."""
    for cause in causes(exc):
        if isinstance(cause, _PG_SATURATED):
            return Outage(POSTGRES, down=False)
        if isinstance(cause, _PG_DOWN):
            return Outage(POSTGRES)
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return Outage(POSTGRES)
        if isinstance(cause, sa_exc.DisconnectionError):  # the pool gave up replacing
            return Outage(POSTGRES)
        if isinstance(cause, asyncpg.InterfaceError) and "connection is closed" in str(cause):
            return Outage(POSTGRES)
        # Connecting: asyncpg raises the socket's own error (refused, reset, timed out,
        # name not found), unwrapped — only the traceback says who raised it.
        if isinstance(cause, OSError) and raised_in(cause, "asyncpg", "sqlalchemy"):
            return Outage(POSTGRES)
    return None


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
