"""The ``hubbub`` command's ordinary failures: a service down or refusing, a database that
is missing or not migrated, a revision that does not exist, a port that is taken. Each
is one line on standard error, ``hubbub: …``, and the exit code README.md gives for its
kind (69: a service unavailable; 2: usage or settings; 1: the command failed) — never a
traceback, and never a hang."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from cli.embedded.process import free_port
from hubbub.config import Settings
from migrations import alembic_config
from tests.support.processes import run_hubbub, settings_env
from tests.support.services import Databases

pytestmark = pytest.mark.slow

# Well past the commands' own bound on connecting (5 s): a hang fails here, not later.
WITHIN_S = 30


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command wrote on standard error."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hubbub: "), result.stderr
    return lines[0]


@pytest.fixture
def nobody() -> int:
    """A port nothing listens on."""
    return free_port()


class TestNatsUnavailable:
    def test_migrate_says_nats_is_not_reachable_and_exits_69(
        self, settings: Settings, nobody: int
    ) -> None:
        env = settings_env(settings, NATS_URL=f"nats://127.0.0.1:{nobody}")
        result = run_hubbub("migrate", env=env, timeout=WITHIN_S)
        assert result.returncode == 69, result.stderr
        assert "database at head" in result.stdout
        line = one_line(result)
        assert line.startswith(f"hubbub: NATS at nats://127.0.0.1:{nobody} is not reachable: ")
        assert "ConnectionRefusedError" in line

    def test_the_credentials_in_the_url_are_not_shown(
        self, settings: Settings, nobody: int
    ) -> None:
        env = settings_env(settings, NATS_URL=f"nats://me:s3cret@127.0.0.1:{nobody}")
        result = run_hubbub("migrate", env=env, timeout=WITHIN_S)
        assert result.returncode == 69, result.stderr
        assert "s3cret" not in result.stderr
        assert f"NATS at nats://me:***@127.0.0.1:{nobody}" in one_line(result)

    def test_a_revocation_is_kept_and_says_the_hubs_were_not_told(
        self, settings: Settings, nobody: int
    ) -> None:
        env = settings_env(settings)
        created = run_hubbub("apikey", "create", "billing", "--channel", "public:*", env=env)
        assert created.returncode == 0, created.stderr
        env["NATS_URL"] = f"nats://127.0.0.1:{nobody}"
        revoked = run_hubbub("apikey", "revoke", "billing", env=env, timeout=WITHIN_S)
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked 'billing'; the hubs could not be told (NATS: " in revoked.stdout
        assert "ConnectionRefusedError" in revoked.stdout
        assert revoked.stderr == ""


class TestPostgresUnavailable:
    @pytest.mark.parametrize(
        "command",
        [
            ["user", "create", "someone@example.com"],
            ["mail"],
            ["apikey", "list"],
            ["migrate"],
        ],
        ids=" ".join,
    )
    def test_a_server_nobody_listens_on(
        self, settings: Settings, nobody: int, command: list[str]
    ) -> None:
        url = f"postgresql+asyncpg://postgres:s3cret@127.0.0.1:{nobody}/hubbub"
        result = run_hubbub(*command, env=settings_env(settings, DATABASE_URL=url))
        assert result.returncode == 69, result.stderr
        line = one_line(result)
        assert line.startswith(
            f"hubbub: PostgreSQL at postgresql+asyncpg://postgres:***@127.0.0.1:{nobody}/hubbub "
            "is not reachable: "
        ), line
        assert "Connect call failed" in line or "Connection refused" in line

    @pytest.mark.parametrize("command", [["user", "create", "someone@example.com"], ["migrate"]])
    def test_a_database_that_does_not_exist(self, settings: Settings, command: list[str]) -> None:
        assert settings.database_url
        url = settings.database_url.rsplit("/", 1)[0] + "/no_such_database"
        result = run_hubbub(*command, env=settings_env(settings, DATABASE_URL=url))
        assert result.returncode == 69, result.stderr
        line = one_line(result)
        assert "PostgreSQL at " in line
        assert 'database "no_such_database" does not exist' in line


async def execute(url: str, statement: str, **params: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement), params)
    finally:
        await engine.dispose()


@pytest.fixture
async def empty_database(databases: Databases) -> Iterator[str]:
    """A database no migration has run on."""
    url = await databases.create(from_template=False)
    yield url
    await databases.drop(url)


class TestDatabaseState:
    def test_a_database_not_migrated_says_to_migrate(
        self, settings: Settings, empty_database: str
    ) -> None:
        env = settings_env(settings, DATABASE_URL=empty_database)
        result = run_hubbub("user", "create", "someone@example.com", env=env)
        assert result.returncode == 1, result.stderr
        line = one_line(result)
        assert "is not migrated" in line
        assert "hubbub migrate" in line

    async def test_a_table_missing_from_a_migrated_database_is_a_bug_with_its_traceback(
        self, settings: Settings
    ) -> None:
        assert settings.database_url
        await execute(settings.database_url, "DROP TABLE api_keys")
        result = run_hubbub("apikey", "list", env=settings_env(settings))
        assert result.returncode == 1, result.stderr
        assert "Traceback" in result.stderr
        assert 'relation "api_keys" does not exist' in result.stderr
        assert "is not migrated" not in result.stderr

    async def test_a_database_behind_the_newest_migration_says_to_migrate(
        self, settings: Settings
    ) -> None:
        assert settings.database_url
        first = list(
            ScriptDirectory.from_config(alembic_config(settings.database_url)).walk_revisions()
        )[-1]
        await execute(settings.database_url, "DROP TABLE api_keys")
        await execute(
            settings.database_url,
            "UPDATE alembic_version SET version_num = :first",
            first=first.revision,
        )
        result = run_hubbub("apikey", "list", env=settings_env(settings))
        assert result.returncode == 1, result.stderr
        line = one_line(result)
        assert "is not migrated" in line
        assert "hubbub migrate" in line

    def test_a_revision_that_does_not_exist_is_a_usage_error(self, settings: Settings) -> None:
        result = run_hubbub("migrate", "--revision", "bogus", env=settings_env(settings))
        assert result.returncode == 2, result.stderr
        assert "Can't locate revision identified by 'bogus'" in one_line(result)


class TestServe:
    def test_a_port_that_is_taken(self, settings: Settings) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = run_hubbub("serve", "--port", str(port), env=settings_env(settings))
        assert result.returncode == 1, result.stderr
        # Its log comes first (on standard error too); then the one line.
        assert "Traceback" not in result.stderr
        line = result.stderr.splitlines()[-1]
        assert line.startswith("hubbub: cannot listen: "), result.stderr
        assert f"('127.0.0.1', {port})" in line
        assert "address already in use" in line
