"""The database layer's foundations: declarative base, naming conventions, engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # No pre-ping: it costs a round trip on every checkout, i.e. every request. A
        # connection the server dropped fails its first statement instead; SQLAlchemy then
        # invalidates the pool (is_disconnect), the request answers an error, and the
        # next one gets a fresh connection. Recycling bounds how old a connection gets.
        pool_recycle=1800,
        # A statement that runs this long is a bug or a lock pile-up: fail it, don't hang.
        connect_args={
            "server_settings": {"statement_timeout": "30000", "application_name": "hubbub"}
        },
        # JSON columns in and out with orjson, like every other JSON here. jsonb keeps
        # numbers as exact decimals: a float like 1e29 comes back as a 30-digit integer,
        # which the stdlib would turn into a Python int that orjson cannot write (the relay
        # would stall on it); orjson reads it back as the float it was.
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        **kwargs,
    )


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
