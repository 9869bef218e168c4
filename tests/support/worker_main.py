"""A worker process with the test operations: ``python -m tests.support.worker_main``.

Settings come from the environment, as for ``hubbub worker``. With
``HUBBUB_TEST_NO_RELAY=1`` the worker publishes no events itself (its outbox relay is
stopped at start): what it commits stays in the outbox for another worker's relay —
the state a worker leaves when it dies between commit and publish.
"""

from __future__ import annotations

import asyncio
import os
import signal

import uvloop

from cli.runtime import load_settings
from hubbub.config import Settings
from hubbub.logs import setup_logging
from tests.support.ops import registry_with_tests
from workers.app import serve_worker, worker_running


async def without_relay(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker_running(settings, registry_with_tests()) as running:
        running.service.on_events = None
        await running.relay.stop()
        await stop.wait()


if __name__ == "__main__":
    settings = load_settings()
    setup_logging("test-worker", settings.log_level, "text")
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if os.environ.get("HUBBUB_TEST_NO_RELAY"):
        asyncio.run(without_relay(settings))
    else:
        asyncio.run(serve_worker(settings, registry_with_tests()))
