"""Integration tests use the fixtures of tests/conftest.py, and these: a second worker, and
the environment of `hubbub up`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hubbub.config import Settings
from tests.support import ops
from tests.support.ports import quiet_port
from tests.support.processes import ROOT
from workers.app import RunningWorker, worker_running


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment for `hubbub up`: no service URLs (so all embedded), own state."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "NATS_URL", "REDIS_URL") and not k.startswith("HUBBUB_")
    }
    env.update(
        {
            "HUBBUB_STATE_DIR": str(tmp_path / "state"),
            # Below the ephemeral ports: no outgoing connection can take a hub's or its
            # admin listener's port before `hubbub up` binds it.
            "HUBBUB_PORT": str(quiet_port()),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


@pytest.fixture
async def second_worker(settings: Settings, worker: RunningWorker) -> AsyncIterator[RunningWorker]:
    """Another worker in this process: requests of one key now race across two workers,
    as they do across processes, and only the database keeps them apart."""
    async with worker_running(settings, ops.registry_with_tests(), name="second") as running:
        yield running
