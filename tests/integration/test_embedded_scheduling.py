"""The embedded servers run under SCHED_BATCH, every thread of them, and what starts
them does not: their wake-ups must not preempt the hubs and workers sharing their cores
(cli/embedded/process.py, ``batch_scheduling``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from cli.embedded import EmbeddedNats, EmbeddedRedis
from cli.embedded.servers import EmbeddedServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SCHED_BATCH is Linux's")


def policies(pid: int) -> set[int]:
    """The scheduling policy of every thread of ``pid``."""
    return {os.sched_getscheduler(thread.id) for thread in psutil.Process(pid).threads()}


@pytest.mark.parametrize("server_class", [EmbeddedNats, EmbeddedRedis])
def test_an_embedded_server_runs_every_thread_under_sched_batch(
    server_class: type[EmbeddedNats] | type[EmbeddedRedis], tmp_path: Path
) -> None:
    server: EmbeddedServer = server_class(tmp_path / "data")
    server.start()
    try:
        assert server.proc is not None
        threads = psutil.Process(server.proc.pid).threads()
        assert policies(server.proc.pid) == {os.SCHED_BATCH}, f"{len(threads)} threads"
    finally:
        server.stop()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the test's own process: untouched
