"""A benchmark's hub signs its one user in as often as the benchmark asks: ``bench.rpc_ab``
signs it in each round, ``bench.rpc`` before each token expires.

``python -m pytest bench/test_stack.py``.
"""

from __future__ import annotations

import os
import shutil

import pytest

from bench.stack import stack_env
from hubbub.config import Settings


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
