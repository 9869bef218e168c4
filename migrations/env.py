"""Alembic environment: async engine (asyncpg), models' metadata for autogenerate."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import handlers.models  # noqa: F401 - registers every table on Base.metadata
from handlers.db import Base
from hubbub.config import normalize_database_url

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL (or run `hubbub migrate`, which finds it)")
    return normalize_database_url(str(url))


def run_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        # Two processes migrating at once (two `hubbub up`s, parallel CI jobs) take turns.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7242)")
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
