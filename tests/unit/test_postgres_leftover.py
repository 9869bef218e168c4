"""A ``postmaster.pid`` left by a run that did not stop (the machine restarted, the
container was killed) may name a pid that is in use again, by something else: that
process is not signalled, and the stale lock file goes, so postgres can start."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli.embedded import servers
from cli.embedded.servers import EmbeddedPostgres


def test_a_pid_in_use_by_something_else_is_left_alone_and_the_lock_file_goes(
    tmp_path: Path,
) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    try:
        server = EmbeddedPostgres(tmp_path / "pg")
        server.data_dir.mkdir(parents=True)
        pid_file = server.data_dir / "postmaster.pid"
        pid_file.write_text(f"{other.pid}\n{server.data_dir}\n")

        server._stop_leftover()

        assert not pid_file.exists()
        assert other.poll() is None  # not interrupted
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait(5)


def test_a_pid_with_no_command_line_is_no_postmaster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel thread or a zombie: /proc gives it an empty command line."""
    monkeypatch.setattr(servers, "command_line", lambda pid: [])
    server = EmbeddedPostgres(tmp_path / "pg")
    server.data_dir.mkdir(parents=True)
    pid_file = server.data_dir / "postmaster.pid"
    pid_file.write_text("2\n")

    server._stop_leftover()

    assert not pid_file.exists()
