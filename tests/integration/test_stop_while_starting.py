"""A stop (SIGTERM) that comes while a process still waits for NATS to start: `hubbub
worker`, `hubbub serve` and `hubbub up` end at once, as stopped — not when their first
connect gives up (exit 69), and not never."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from cli.embedded.process import die_with_parent, free_port
from hubbub.config import Settings
from tests.support.ports import quiet_port
from tests.support.processes import ROOT, settings_env, wait_exit
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

# Far below the worker's and hub's first-connect bound (30 s): a stop that is not acted
# on shows as a timeout here, and one that waits the bound out as exit code 69.
STOPS_WITHIN_S = 20


class Running:
    """``hubbub ARGS``, its output (standard error and out) read as it comes."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env=env,
            preexec_fn=die_with_parent(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def said(self, text: str) -> None:
        await wait_for(lambda: text in self.output, timeout=60, what=repr(text))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)


@pytest.fixture
def nats_down(settings: Settings) -> dict[str, str]:
    """The test's settings, with a NATS_URL nothing listens on."""
    return settings_env(settings, NATS_URL=f"nats://127.0.0.1:{free_port()}")


@pytest.mark.parametrize("which", ["worker", "serve"])
async def test_a_process_waiting_for_nats_stops_on_sigterm(
    nats_down: dict[str, str], which: str
) -> None:
    command = ["worker"] if which == "worker" else ["serve", "--port", str(quiet_port(1))]
    running = Running(nats_down, *command)
    try:
        # Its first connect failed once and goes on trying: it says so.
        await running.said("nats: cannot connect (ConnectionRefusedError")
        running.proc.send_signal(signal.SIGTERM)
        code = await wait_exit(running.proc, STOPS_WITHIN_S)
        assert code == 0, running.output
    finally:
        running.close()


async def test_up_waiting_for_nats_stops_on_sigterm(nats_down: dict[str, str]) -> None:
    """`hubbub up` with a NATS_URL that does not answer: SIGTERM while it sets up the
    streams (after its migrations) ends it as stopped (130)."""
    nats_down["HUBBUB_PORT"] = str(quiet_port(1))
    running = Running(nats_down, "up", "--no-frontend")
    try:
        await running.said("applying migrations")
        running.proc.send_signal(signal.SIGTERM)
        code = await wait_exit(running.proc, STOPS_WITHIN_S)
        assert code == 130, running.output
        assert "Traceback" not in running.output
    finally:
        running.close()


async def test_up_says_why_when_nats_does_not_answer(nats_down: dict[str, str]) -> None:
    """Left alone, `hubbub up` gives up on NATS after its bound: one line naming it, 69."""
    nats_down["HUBBUB_PORT"] = str(quiet_port(1))
    running = Running(nats_down, "up", "--no-frontend")
    try:
        code = await wait_exit(running.proc, 60)
        running.close()
        assert code == 69, running.output
        assert "Traceback" not in running.output
        url = nats_down["NATS_URL"]
        assert f"hubbub up failed: NATS at {url} is not reachable: no connection within" in (
            running.output
        )
    finally:
        running.close()
