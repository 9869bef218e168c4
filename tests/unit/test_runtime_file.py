"""`.hubbub/runtime.json`: the URLs of a running `hubbub up` and its children's pids."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from cli.runtime import (
    LOCK_FILE,
    RUNTIME_FILE,
    dev_secret,
    hold_state_dir,
    read_runtime,
    read_runtime_pids,
    write_runtime,
)

URLS = {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/hubbub", "HUB_URLS": "x"}


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """A state folder held as a running `hubbub up` holds it."""
    lock = hold_state_dir(tmp_path)
    assert lock is not None
    yield tmp_path
    lock.close()


def test_the_urls_and_the_pids_are_read_apart(held: Path) -> None:
    """URL readers see only strings; the pids come from their own reader."""
    write_runtime(held, URLS, {"hub-1": 123, "postgres": 456})
    assert read_runtime(held) == URLS
    assert read_runtime_pids(held) == {"hub-1": 123, "postgres": 456}
    assert (held / RUNTIME_FILE).stat().st_mode & 0o777 == 0o600


def test_rewriting_replaces_the_file_whole(held: Path) -> None:
    write_runtime(held, URLS, {"worker-1": 1})
    write_runtime(held, URLS, {"worker-1": 2})
    assert read_runtime_pids(held) == {"worker-1": 2}
    assert sorted(p.name for p in held.iterdir()) == [RUNTIME_FILE, LOCK_FILE]  # no temporary


def test_the_file_of_an_up_that_is_gone_reads_as_nothing(tmp_path: Path) -> None:
    """Its pid may be a live process by now (here: this one's), its URLs dead servers',
    its children's pids other processes': only the folder's lock says an `up` runs."""
    (tmp_path / RUNTIME_FILE).write_bytes(orjson.dumps({**URLS, "pids": {"hub-1": os.getpid()}}))
    assert read_runtime(tmp_path) == {}
    assert read_runtime_pids(tmp_path) == {}
    lock = hold_state_dir(tmp_path)  # a killed run's lock file stays, unheld
    assert lock is not None
    lock.close()
    assert read_runtime(tmp_path) == {}
    assert read_runtime_pids(tmp_path) == {}


class TestHoldingTheStateFolder:
    """One `hubbub up` per state folder: an OS lock, not a pid in a file (a killed run's
    pid may be in use again, and pids mean nothing across containers)."""

    def test_a_second_holder_is_refused_while_the_first_holds_it(self, tmp_path: Path) -> None:
        first = hold_state_dir(tmp_path)
        assert first is not None
        assert hold_state_dir(tmp_path) is None
        first.close()
        again = hold_state_dir(tmp_path)
        assert again is not None
        again.close()

    def test_a_command_looking_whether_an_up_runs_does_not_keep_one_from_starting(
        self, tmp_path: Path
    ) -> None:
        """Such a look holds the lock shared for a moment; `up` waits that out."""
        made = hold_state_dir(tmp_path)  # the lock file
        assert made is not None
        made.close()
        looking = os.open(tmp_path / LOCK_FILE, os.O_RDONLY)
        fcntl.flock(looking, fcntl.LOCK_SH)
        done_looking = threading.Timer(0.05, os.close, [looking])
        done_looking.start()
        lock = hold_state_dir(tmp_path, patience_s=5.0)
        done_looking.join()
        assert lock is not None
        lock.close()

    def test_a_killed_holder_leaves_the_folder_free(self, tmp_path: Path) -> None:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == b"held\n"
            assert hold_state_dir(tmp_path) is None
        finally:
            holder.kill()  # as `kill -9` of `hubbub up`: no cleanup runs
            holder.wait(5)
        lock = hold_state_dir(tmp_path)
        assert lock is not None
        lock.close()


HOLD = """
import sys, signal
from pathlib import Path
from cli.runtime import hold_state_dir
lock = hold_state_dir(Path(sys.argv[1]))
print("held", flush=True)
signal.pause()
"""


class TestTheStateFoldersMode:
    """The state folder holds the embedded servers' data and the secrets: only its owner
    may enter it."""

    def test_a_new_one_is_made_owner_only(self, tmp_path: Path) -> None:
        state = tmp_path / "new" / ".hubbub"
        lock = hold_state_dir(state)
        assert lock is not None
        lock.close()
        assert stat.S_IMODE(state.stat().st_mode) == 0o700

    def test_one_an_older_version_made_wider_is_narrowed(self, tmp_path: Path) -> None:
        state = tmp_path / ".hubbub"
        state.mkdir(mode=0o755)
        state.chmod(0o755)
        dev_secret(state)
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
