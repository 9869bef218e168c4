from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS

from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.subjects import Subjects
from tests.support import ops
from workers.app import RunningWorker, worker_running


@pytest.fixture
async def worker(settings: Settings, nc: NATS) -> AsyncIterator[RunningWorker]:
    """A worker running in this process with the production and the test handlers."""
    ops.executed.clear()
    ops.emit_calls.clear()
    async with worker_running(settings, ops.registry_with_tests()) as running:
        yield running


@pytest.fixture
def bus(nc: NATS, settings: Settings) -> Bus:
    return Bus(nc, Subjects(settings.namespace))
