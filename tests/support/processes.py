"""Starting Hubbub processes from tests, and waiting for them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli.embedded.process import die_with_parent
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.errors import Unavailable
from tests.support import ops
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def run_hubbub(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``hubbub ARGS`` as an operator runs it, to its end; its output kept as text."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    env.update(
        {
            "DATABASE_URL": settings.database_url or "",
            "NATS_URL": settings.nats_url or "",
            "REDIS_URL": settings.redis_url or "",
            "HUBBUB_NAMESPACE": settings.namespace,
            "HUBBUB_SECRET_KEY": settings.secret_key or "",
            "HUBBUB_STATE_DIR": str(settings.state_dir),
            "HUBBUB_ENV": "test",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def start_test_worker(settings: Settings, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker_main"],
        cwd=ROOT,
        preexec_fn=die_with_parent(),
        env=settings_env(settings, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def wait_until_serving(bus: Bus, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    async def serving() -> bool:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"worker exited with {proc.returncode}:\n{out}")
        try:
            await bus.request(ops.echo_unkeyed, {}, caller=None, timeout=2)
        except Unavailable:
            return False
        return True

    await wait_for(serving, timeout, interval=0.1, what="the worker serving")


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        await wait_for(lambda: proc.poll() is not None, timeout, what=f"process {proc.pid} exit")
    except AssertionError:
        proc.kill()
        raise
    return proc.returncode
