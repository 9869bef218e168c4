"""A real worker process: SIGTERM drains it (stop taking, finish in flight, then exit)."""

from __future__ import annotations

import asyncio
import signal

import pytest
from nats.aio.client import Client as NATS

from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.errors import Unavailable
from tests.support import ops
from tests.support.processes import start_test_worker, wait_exit, wait_until_serving
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


class TestDrainOnSigterm:
    async def test_in_flight_and_queued_requests_finish_then_the_process_exits(
        self, settings: Settings, nc: NATS, bus: Bus
    ) -> None:
        proc = start_test_worker(settings)
        try:
            await wait_until_serving(bus, proc)
            running = asyncio.ensure_future(
                bus.request(ops.echo, {"key": "d", "seq": 1, "delay": 1.0}, caller=None)
            )
            queued = asyncio.ensure_future(
                bus.request(ops.echo, {"key": "d", "seq": 2, "delay": 0.2}, caller=None)
            )
            await wait_for(lambda: bus.replies.in_flight == 2, what="both sent")
            await nc.flush()  # NATS has sent both to the worker
            proc.send_signal(signal.SIGTERM)

            async def refused() -> bool:
                try:
                    await bus.request(ops.echo, {"key": "new"}, caller=None, timeout=2)
                except Unavailable:
                    return True
                return False  # taken: the signal is not handled yet

            await wait_for(refused, what="no longer taking new work")
            assert [(await running).value.seq, (await queued).value.seq] == [1, 2]
            assert await wait_exit(proc, 10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()

    async def test_work_past_the_drain_deadline_is_answered_unavailable(
        self, settings: Settings, nc: NATS, bus: Bus
    ) -> None:
        proc = start_test_worker(settings, HUBBUB_DRAIN_TIMEOUT_S="0.5")
        try:
            await wait_until_serving(bus, proc)
            stuck = asyncio.ensure_future(
                bus.request(ops.echo, {"key": "s", "delay": 5.0}, caller=None)
            )
            await wait_for(lambda: bus.replies.in_flight == 1, what="the request sent")
            await nc.flush()  # NATS has sent it to the worker
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(Unavailable, match="shutting down"):
                await stuck
            assert await wait_exit(proc, 10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
