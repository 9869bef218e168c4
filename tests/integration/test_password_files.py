"""DATABASE_PASSWORD_FILE and REDIS_PASSWORD_FILE: a server's password read from a file
(compose hands its generated ones over so) goes into its URL, against a real PostgreSQL
and a real Redis that refuse a client without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from cli.embedded import EmbeddedPostgres, EmbeddedRedis
from hubbub.config import ConfigError, Settings
from hubbub.redisconn import redis_from_settings


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def without_password(url: str) -> str:
    parts = urlsplit(url)
    user = parts.username or ""
    return parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port}").geturl()


@pytest.fixture
def postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedPostgres]:
    monkeypatch.delenv("PGPASSWORD", raising=False)  # the file's password, nothing else
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    server = EmbeddedPostgres(tmp_path / "postgres", database="postgres", durable=False)
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    yield server
    server.stop()


async def test_the_database_password_comes_from_its_file(
    postgres: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = without_password(postgres.start())
    loaded = settings(
        monkeypatch, DATABASE_URL=url, DATABASE_PASSWORD_FILE=str(postgres.password_path)
    )
    assert loaded.database_url is not None
    engine = create_async_engine(loaded.database_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT current_user"))).scalar() == "postgres"
    finally:
        await engine.dispose()


async def test_the_redis_password_comes_from_its_file_whatever_its_characters(
    redis_server: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_server.password_path.parent.mkdir(parents=True, exist_ok=True)
    redis_server.password_path.write_text("p@ss/w:rd%#?\n")  # the one it starts with
    redis_server.start()
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    loaded = settings(
        monkeypatch, REDIS_URL=url, REDIS_PASSWORD_FILE=str(redis_server.password_path)
    )
    client = redis_from_settings(loaded)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


def test_a_password_file_that_cannot_be_read_is_refused_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="REDIS_PASSWORD_FILE"):
        settings(monkeypatch, REDIS_URL="redis://redis:6379/0", REDIS_PASSWORD_FILE=str(missing))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="DATABASE_PASSWORD_FILE"):
        settings(monkeypatch, DATABASE_URL="postgres://u@db/x", DATABASE_PASSWORD_FILE=str(empty))
