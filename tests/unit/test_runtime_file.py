"""`.hubbub/runtime.json`: the URLs of a running `hubbub up` and its children's pids."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

from cli.runtime import RUNTIME_FILE, other_up, read_runtime, read_runtime_pids, write_runtime

URLS = {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/hubbub", "HUB_URLS": "x"}


def test_the_urls_and_the_pids_are_read_apart(tmp_path: Path) -> None:
    """URL readers see only strings; the pids come from their own reader."""
    write_runtime(tmp_path, URLS, {"hub-1": 123, "postgres": 456})
    assert read_runtime(tmp_path) == URLS
    assert read_runtime_pids(tmp_path) == {"hub-1": 123, "postgres": 456}
    assert (tmp_path / RUNTIME_FILE).stat().st_mode & 0o777 == 0o600


def test_rewriting_replaces_the_file_whole(tmp_path: Path) -> None:
    write_runtime(tmp_path, URLS, {"worker-1": 1})
    write_runtime(tmp_path, URLS, {"worker-1": 2})
    assert read_runtime_pids(tmp_path) == {"worker-1": 2}
    assert [p.name for p in tmp_path.iterdir()] == [RUNTIME_FILE]  # no temporary left


def test_the_file_of_an_up_that_is_gone_reads_as_nothing(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    (tmp_path / RUNTIME_FILE).write_bytes(
        orjson.dumps({"pid": int(dead.stdout), **URLS, "pids": {"hub-1": 1}})
    )
    assert read_runtime(tmp_path) == {}
    assert read_runtime_pids(tmp_path) == {}


class TestAnotherUp:
    """A runtime file left by a killed `hubbub up` names a pid that may be in use again."""

    def test_the_pid_of_this_very_process_is_no_other_up(self, tmp_path: Path) -> None:
        write_runtime(tmp_path, URLS, {})  # as a container's PID 1 finds its own file
        assert other_up(tmp_path) is None

    def test_an_unrelated_process_with_the_pid_is_no_other_up(self, tmp_path: Path) -> None:
        with running(sys.executable, "-c", PAUSE) as pid:
            (tmp_path / RUNTIME_FILE).write_bytes(orjson.dumps({"pid": pid, **URLS}))
            assert other_up(tmp_path) is None

    def test_a_running_up_is_one(self, tmp_path: Path) -> None:
        with running(sys.executable, "-c", PAUSE, "-m", "cli.main", "up") as pid:
            (tmp_path / RUNTIME_FILE).write_bytes(orjson.dumps({"pid": pid, **URLS}))
            assert other_up(tmp_path) == pid


PAUSE = "import signal; signal.pause()"


@contextlib.contextmanager
def running(*argv: str) -> Iterator[int]:
    """A process of our own with ``argv``, stopped (by its pid) at the end."""
    proc = subprocess.Popen(argv)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(5)
