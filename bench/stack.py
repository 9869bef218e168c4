"""One hub and its workers as processes of their own (``hubbub serve``, ``hubbub worker``)
on a benchmark's services: what ``bench rpc``, ``bench workspace``, ``bench.rpc_ab`` and
``bench.sched_ab`` run Hubbub as."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cli.embedded.process import die_with_parent

ROOT = Path(__file__).resolve().parents[1]


def stack_env(urls: dict[str, str], tree: Path = ROOT) -> dict[str, str]:
    """The environment of a benchmark's hub and workers: the services' URLs, a state
    folder of its own, quiet logs, no per-connection command rate limit (a benchmark,
    not a client), no limit on its user's sign-ins and sessions (``bench.rpc_ab`` signs
    the one user in each round), and the code of ``tree`` (a checkout)."""
    return {
        **os.environ,
        **urls,
        "HUBBUB_SECRET_KEY": "bench-secret-" + "x" * 40,
        "HUBBUB_STATE_DIR": tempfile.mkdtemp(prefix="hubbub-bench-"),
        "HUBBUB_LOG_LEVEL": "WARNING",
        "HUBBUB_ACCESS_LOG": "false",
        "HUBBUB_WS_COMMANDS_PER_S": "1000000",
        "HUBBUB_WS_COMMANDS_BURST": "1000000",
        "HUBBUB_RATE_LOGIN_SUCCESS_IP": "1000000/60",
        "HUBBUB_RATE_LOGIN_SUCCESS_ACCOUNT": "1000000/60",
        "HUBBUB_MAX_SESSIONS_PER_USER": "1000000",
        "PYTHONPATH": str(tree),
    }


def start_stack(
    env: dict[str, str], port: int, *, workers: int = 1, tree: Path = ROOT
) -> list[subprocess.Popen[bytes]]:
    """``workers`` worker processes, then the hub on ``port``: the hub is the last of
    the list. Each dies with the benchmark."""

    def start(*command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", *command],
            env=env,
            cwd=tree,
            preexec_fn=die_with_parent(),
        )

    return [*(start("worker") for _ in range(workers)), start("serve", "--port", str(port))]
