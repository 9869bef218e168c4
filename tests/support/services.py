"""The real services the tests talk to: embedded ones on free ports, or the three URLs.

Set ``DATABASE_URL``, ``NATS_URL`` and ``REDIS_URL`` (any subset) to use existing
servers; each test still gets its own database, NATS namespace and Redis key prefix, so
runs never see each other's data even on shared servers.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from cli.embedded import EmbeddedNats, EmbeddedPostgres, EmbeddedRedis
from hubbub.config import normalize_database_url


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str  # the server's maintenance database; tests create their own
    nats_url: str
    redis_url: str
    embedded: tuple[str, ...]


@contextmanager
def running_services(base: Path) -> Iterator[ServiceUrls]:
    started: list[EmbeddedPostgres | EmbeddedNats | EmbeddedRedis] = []
    try:
        db = os.environ.get("DATABASE_URL")
        if not db:
            pg = EmbeddedPostgres(base / "postgres", database="postgres", durable=False)
            started.append(pg)
            db = pg.start()
        nats_url = os.environ.get("NATS_URL")
        if not nats_url:
            server = EmbeddedNats(base / "nats")
            started.append(server)
            nats_url = server.start()
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis = EmbeddedRedis(base / "redis")
            started.append(redis)
            redis_url = redis.start()
        yield ServiceUrls(
            normalize_database_url(db), nats_url, redis_url, tuple(s.name for s in started)
        )
    finally:
        for server in reversed(started):
            server.stop()


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    query = ""
    if "?" in url.rpartition("/")[2]:
        query = "?" + url.rpartition("?")[2]
    return f"{base}/{name}{query}"


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


class Databases:
    """A migrated template database, and cheap copies of it for each test."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.template = unique("hubbub_tpl_")
        self.created: list[str] = []

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(asyncpg_dsn(self.server_url))

    async def create_template(self) -> None:
        import migrations

        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await conn.close()
        await migrations.upgrade(with_database(self.server_url, self.template))

    async def create(self, *, from_template: bool = True) -> str:
        name = unique("hubbub_t_")
        conn = await self._admin()
        try:
            template = f' TEMPLATE "{self.template}"' if from_template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{template}')
        finally:
            await conn.close()
        self.created.append(name)
        return with_database(self.server_url, name)

    async def drop(self, url: str) -> None:
        name = url.rpartition("/")[2].partition("?")[0]
        conn = await self._admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def drop_all(self) -> None:
        conn = await self._admin()
        try:
            for name in [*self.created, self.template]:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def hubbub_processes() -> list[str]:
    """Command lines of any cli/embedded server process still alive (for leak checks)."""
    out = subprocess.run(
        ["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if "hubbub" in line and "pytest" not in line]
