"""The embedded PostgreSQL of `hubbub up` lets in as many connections as its workers may
hold: each up to HUBBUB_DB_POOL_SIZE + HUBBUB_DB_MAX_OVERFLOW + HUBBUB_DB_READ_POOL_SIZE
+ 1 (the outbox relay's own), and some for the commands run beside it; never fewer than
200. `--workers auto` on a machine of many CPUs would otherwise be refused
connections."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from cli.embedded import EmbeddedPostgres
from cli.supervisor import Supervisor, postgres_connections
from hubbub.config import Settings


def settings(tmp_path: Path, **values: int) -> Settings:
    return Settings(state_dir=tmp_path, _env_file=None, **values)  # type: ignore[call-arg]


def test_enough_for_every_worker_and_the_commands(tmp_path: Path) -> None:
    defaults = settings(tmp_path)  # 10 + 10 + 4 + 1 = 25 a worker
    assert postgres_connections(defaults, workers=12) == 12 * 25 + 20
    assert postgres_connections(defaults, workers=1) == 200  # the least it is given
    bigger = settings(tmp_path, db_pool_size=30, db_max_overflow=0, db_read_pool_size=9)
    assert postgres_connections(bigger, workers=8) == 8 * 40 + 20


def test_up_gives_its_embedded_server_that_many(tmp_path: Path) -> None:
    up = Supervisor(settings(tmp_path), workers=12)
    assert up.embedded_postgres().max_connections == 12 * 25 + 20


async def test_the_server_runs_with_it(tmp_path: Path) -> None:
    server = EmbeddedPostgres(
        tmp_path / "postgres", database="postgres", durable=False, max_connections=321
    )
    try:
        url = server.start().replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SHOW max_connections") == "321"
        finally:
            await conn.close()
    finally:
        server.stop()
