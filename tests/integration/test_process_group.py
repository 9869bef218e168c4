"""``run_group``: a child that starts children of its own (npm, initdb) is run to its
end like ``subprocess.run`` — same output, same return code — and when something cuts
the wait short (``hubbub up``'s stop is an exception raised by a signal handler in the
main thread), none of its processes outlives the exception: not the child, and not the
children it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from cli.embedded.process import run_group

# The child: it starts a grandchild, says both process ids on the pipe's descriptor
# ({fd}), and waits for it.
FORKS = "sleep 1000 & echo $$ $! >/dev/fd/{fd}; wait"
# The same, but neither the child nor the grandchild heeds SIGTERM.
FORKS_DEAF = (
    "trap '' TERM; sh -c \"trap '' TERM; exec sleep 1000\" & echo $$ $! >/dev/fd/{fd}; wait"
)


class Interrupted(Exception):
    """What the signal handler raises, as ``hubbub up``'s does while it starts."""


def alive(pid: int) -> bool:
    """Does ``pid`` still run? A zombie waiting to be reaped does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture
def interrupt_once_started() -> Iterator[tuple[int, list[int]]]:
    """A pipe the child writes its and its grandchild's pids on; once they are read, the
    main thread is interrupted (SIGUSR1, whose handler raises ``Interrupted``)."""

    def raise_interrupted(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, raise_interrupted)
    read, write = os.pipe()
    pids: list[int] = []

    def interrupt() -> None:
        with os.fdopen(read) as lines:
            pids.extend(int(p) for p in lines.readline().split())
        os.kill(os.getpid(), signal.SIGUSR1)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    try:
        yield write, pids
    finally:
        os.close(write)
        thread.join(10)
        signal.signal(signal.SIGUSR1, previous)
        for pid in pids:  # a failed test leaves nothing behind either
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_output_and_return_code_are_subprocess_runs() -> None:
    result = run_group(
        ["sh", "-c", "cat; echo err >&2; exit 3"], input="in\n", capture_output=True, text=True
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, "in\n", "err\n")
    with pytest.raises(subprocess.CalledProcessError) as raised:
        run_group(["sh", "-c", "exit 4"], check=True)
    assert raised.value.returncode == 4
    assert run_group(["true"], check=True).returncode == 0


def test_an_interrupted_wait_leaves_no_process_of_the_group(
    interrupt_once_started: tuple[int, list[int]],
) -> None:
    fd, pids = interrupt_once_started
    with pytest.raises(Interrupted):
        run_group(["sh", "-c", FORKS.format(fd=fd)], pass_fds=(fd,))
    child, grandchild = pids
    assert not alive(child)
    assert not alive(grandchild)


def test_a_group_deaf_to_sigterm_is_killed_after_the_bound(
    interrupt_once_started: tuple[int, list[int]],
) -> None:
    fd, pids = interrupt_once_started
    with pytest.raises(Interrupted):
        run_group(["sh", "-c", FORKS_DEAF.format(fd=fd)], pass_fds=(fd,), stop_timeout=0.2)
    child, grandchild = pids
    assert not alive(child)
    assert not alive(grandchild)
