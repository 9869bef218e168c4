"""The embedded PostgreSQL and Redis let no one in without their password: they listen on
127.0.0.1, where every local user and process of the machine can reach them.

Each password is generated once and kept beside the server's data folder (mode 0600);
the URL ``start()`` returns carries it. A PostgreSQL data folder made before passwords
(``initdb --auth=trust``) keeps its data and gets the password on its next start.
"""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from redis import Redis
from redis.exceptions import AuthenticationError

from cli.embedded import EmbeddedPostgres, EmbeddedRedis
from cli.embedded.process import command_line
from tests.support.services import asyncpg_dsn


@pytest.fixture
def no_client_passwords(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A connection given no password has none: not from the environment, nor a
    ``.pgpass``."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


def without_password(url: str, password: str | None = None) -> str:
    """``url`` with no password in it, or with ``password`` instead of its own."""
    parts = urlsplit(url)
    user = parts.username or ""
    if password is not None:
        user += f":{password}"
    host = f"{parts.hostname}:{parts.port}"
    return parts._replace(netloc=f"{user}@{host}" if user else host).geturl()


def assert_private(path: Path) -> None:
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def assert_postgres_needs_its_password(url: str) -> None:
    dsn = asyncpg_dsn(url)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(without_password(dsn))
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(without_password(dsn, "wrong"))


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "postgres", database="postgres", durable=False)
    yield server
    server.stop()


@pytest.mark.usefixtures("no_client_passwords")
async def test_postgres_refuses_a_connection_without_its_password(
    postgres: EmbeddedPostgres,
) -> None:
    url = postgres.start()

    await assert_postgres_needs_its_password(url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert await conn.fetchval("SELECT current_user") == "postgres"
    finally:
        await conn.close()
    assert_private(postgres.password_path)
    assert urlsplit(url).password == postgres.password_path.read_text().strip()


def make_data_folder_with_trust(server: EmbeddedPostgres, sql: str) -> None:
    """A data folder as Hubbub made them before passwords (``initdb --auth=trust``: any
    local connection gets in as the superuser), with ``sql`` run in it."""
    server.data_dir.mkdir(parents=True)
    server._prepare_user()
    bin_dir = server.bin_dir()
    initdb = [bin_dir / "initdb", "-D", server.data_dir, "--auth=trust", "-U", "postgres"]
    subprocess.run(initdb, user=server.user, check=True, capture_output=True)
    single_user = [bin_dir / "postgres", "--single", "-D", server.data_dir, "postgres"]
    subprocess.run(single_user, input=sql.encode(), user=server.user, check=True)


@pytest.mark.usefixtures("no_client_passwords")
async def test_a_data_folder_made_with_trust_keeps_its_data_and_needs_the_password(
    postgres: EmbeddedPostgres,
) -> None:
    make_data_folder_with_trust(
        postgres, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here');\n"
    )

    url = postgres.start()

    await assert_postgres_needs_its_password(url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert await conn.fetchval("SELECT note FROM kept") == "still here"
    finally:
        await conn.close()
    assert "trust" not in (postgres.data_dir / "pg_hba.conf").read_text()


@pytest.mark.usefixtures("no_client_passwords")
async def test_a_lost_password_file_is_replaced_by_a_new_password(
    postgres: EmbeddedPostgres,
) -> None:
    """The data is not lost with it: the server gets the new password before it starts."""
    first = postgres.start()
    postgres.stop()
    postgres.password_path.unlink()

    url = postgres.start()

    assert urlsplit(url).password != urlsplit(first).password
    conn = await asyncpg.connect(asyncpg_dsn(url))
    await conn.close()
    await assert_postgres_needs_its_password(url)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    yield server
    server.stop()


def test_redis_refuses_a_client_without_its_password(redis_server: EmbeddedRedis) -> None:
    url = redis_server.start()

    for stranger in (without_password(url), without_password(url, "wrong")):
        with Redis.from_url(stranger) as client, pytest.raises(AuthenticationError):
            client.set("k", "v")
    with Redis.from_url(url) as client:
        assert client.ping()
    assert_private(redis_server.password_path)
    assert urlsplit(url).password == redis_server.password_path.read_text().strip()


def test_redis_keeps_its_password_across_restarts_and_off_its_command_line(
    redis_server: EmbeddedRedis,
) -> None:
    """``ps`` shows every process's arguments to every user of the machine."""
    url = redis_server.start()
    with Redis.from_url(url) as client:
        client.set("kept", "yes")

    again = redis_server.restart()

    assert again == url
    with Redis.from_url(again) as client:
        assert client.get("kept") == b"yes"
    assert redis_server.proc is not None
    password = urlsplit(url).password
    assert password
    assert not any(password in arg for arg in command_line(redis_server.proc.pid) or [])
