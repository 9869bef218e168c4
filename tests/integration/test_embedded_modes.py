"""What an embedded server keeps on disk is its owner's alone: its data folder is 0700
and its log 0600, whatever the umask, and one an earlier run left wider is narrowed.

Redis's append-only file holds cached workspace data (titles, bodies, emails), NATS's
store every event, PostgreSQL's folder everything; their logs name users and queries.
The state folder above them is 0711 when ``hubbub up`` runs as root (the embedded
PostgreSQL's system user passes through it), so it does not hide them by itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.embedded import EmbeddedNats, EmbeddedPostgres, EmbeddedRedis
from cli.embedded.servers import EmbeddedServer

SERVERS: dict[str, Callable[[Path], EmbeddedServer]] = {
    "nats": lambda folder: EmbeddedNats(folder),
    "redis": lambda folder: EmbeddedRedis(folder),
    "postgres": lambda folder: EmbeddedPostgres(folder, database="postgres", durable=False),
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedServer]:
    made = SERVERS[request.param](tmp_path / "state" / request.param)
    yield made
    made.stop()


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets every user read what is made (022 is the common default)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


@pytest.mark.usefixtures("open_umask")
def test_a_new_data_folder_and_log_are_the_owners_alone(server: EmbeddedServer) -> None:
    server.start()

    assert mode(server.data_dir) == 0o700
    assert mode(server.log_path) == 0o600
    assert server.log_path.stat().st_size > 0  # the server writes to it


@pytest.mark.usefixtures("open_umask")
def test_a_data_folder_and_log_left_wider_are_narrowed(server: EmbeddedServer) -> None:
    server.data_dir.mkdir(parents=True, mode=0o755)
    server.data_dir.chmod(0o755)
    server.log_path.write_text("an earlier run's lines\n")
    server.log_path.chmod(0o644)

    server.start()

    assert mode(server.data_dir) == 0o700
    assert mode(server.log_path) == 0o600
    assert server.log_path.read_text().startswith("an earlier run's lines\n")  # kept
