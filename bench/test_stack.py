"""A benchmark's hub and workers (``bench.stack``): the hub signs its one user in as often
as the benchmark asks (``bench.rpc_ab`` signs it in each round, ``bench.rpc`` before each
token expires), and a benchmark waiting for them to be ready learns at once that one exited.

``python -m pytest bench/test_stack.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from bench.rpc import wait_ready
from bench.stack import stack_env
from hubbub.config import Settings
from tests.support.ports import quiet_port


def test_the_benchmark_user_signs_in_without_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    env = stack_env({})
    shutil.rmtree(env["HUBBUB_STATE_DIR"])
    for name in [k for k in os.environ if k.startswith("HUBBUB_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("HUBBUB_"):
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    rounds = 1000  # sign-ins within an hour, more than any run makes
    for rate in (settings.rate_login_success_ip, settings.rate_login_success_account):
        assert rate.count * max(1, 3600 // rate.per_s) >= rounds, rate
    assert settings.max_sessions_per_user >= rounds


async def test_waiting_for_the_hub_ends_at_once_when_it_has_exited() -> None:
    """A hub (or worker) that crashed on start ends the wait with its exit, not 60 s of
    asking a port nobody listens on."""
    hub = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    hub.wait()
    nobody = f"http://127.0.0.1:{quiet_port(1)}"
    with pytest.raises(AssertionError, match="exited with 3"):
        await wait_ready(nobody, [hub])
