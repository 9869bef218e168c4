"""A worker process with the test operations: ``python -m tests.support.worker_main``.

Settings come from the environment, as for ``hubbub worker``.
"""

from __future__ import annotations

import asyncio

import uvloop

from hubbub.config import load_settings
from hubbub.logs import setup_logging
from tests.support.ops import registry_with_tests
from workers.app import serve_worker

if __name__ == "__main__":
    settings = load_settings()
    setup_logging("test-worker", settings.log_level, "text")
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(serve_worker(settings, registry_with_tests()))
