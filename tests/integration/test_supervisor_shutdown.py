"""``hubbub up`` stops its hubs and workers with one SIGTERM each: a second one, while a
hub drains its sockets, would cut its graceful stop short (the hub's ``run_hub``, as
aiohttp's ``run_app``, cancels every task on it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from cli.restarts import RestartHistory, RestartPolicy
from cli.supervisor import STOP_GRACE_S, Child, Supervisor
from workers.app import AFTER_DRAIN_S

# A stand-in for a hub: notes each SIGTERM, and takes a while to stop after the first,
# as a hub draining its sockets does. The first to finish is waited for before the
# others: a signal sent them then lands in their drain.
DRAINING = """
import signal, sys, time
path, drain_s = sys.argv[1], float(sys.argv[2])
signal.signal(signal.SIGTERM, lambda *_: open(path, "a").write("TERM\\n"))
print("ready", flush=True)
signal.pause()
time.sleep(drain_s)
"""


def stand_in(name: str, argv0: str, notes: Path, drain_s: float) -> Child:
    child = Child(name, [argv0], {}, RestartHistory(RestartPolicy()))
    child.proc = subprocess.Popen(
        [sys.executable, "-c", DRAINING, str(notes), str(drain_s)], stdout=subprocess.PIPE
    )
    assert child.proc.stdout is not None
    assert child.proc.stdout.readline() == b"ready\n"  # its handler is in place
    return child


def test_each_hub_and_worker_gets_one_sigterm(tmp_path: Path) -> None:
    children = [
        stand_in(name, argv0, tmp_path / name, drain_s)
        for name, argv0, drain_s in (
            ("hub-1", "serve", 0.2),
            ("hub-2", "serve", 2.0),
            ("worker-1", "worker", 0.2),
            ("worker-2", "worker", 2.0),
        )
    ]
    supervisor: Any = SimpleNamespace(
        children=children,
        servers=[],
        settings=SimpleNamespace(shutdown_timeout_s=5.0, drain_timeout_s=5.0),
    )

    Supervisor._shutdown(cast(Supervisor, supervisor))

    for child in children:
        assert child.proc is not None
        assert child.proc.returncode == 0, child.name
        assert (tmp_path / child.name).read_text() == "TERM\n", child.name


def test_a_workers_whole_stop_fits_in_the_grace_it_is_given() -> None:
    """Past its drain timeout, a worker's stop takes at most AFTER_DRAIN_S (one deadline
    for all its steps, workers/app.py); ``hubbub up`` kills it only after more."""
    assert AFTER_DRAIN_S < STOP_GRACE_S
