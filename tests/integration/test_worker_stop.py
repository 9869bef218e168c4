"""A worker stops cleanly whatever state its NATS link is in."""

from __future__ import annotations

from hubbub.config import Settings
from tests.support import ops
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for
from workers.app import worker_running


async def test_a_worker_stops_cleanly_while_nats_is_unreachable(settings: Settings) -> None:
    """Nothing to drain through: the worker's shutdown closes its NATS client instead of
    failing with ConnectionReconnectingError (and leaving it reconnecting forever)."""
    proxy = TcpProxy.to_url(settings.nats_url)
    await proxy.start()
    try:
        own = settings.model_copy(update={"nats_url": proxy.url("nats")})
        running = worker_running(own, ops.registry_with_tests())
        worker = await running.__aenter__()
        nc = worker.service.nc
        await proxy.cut()

        async def link_down() -> bool:
            return not nc.is_connected

        await wait_for(link_down, timeout=10, what="the worker sees NATS gone")
        await running.__aexit__(None, None, None)
        assert nc.is_closed
    finally:
        await proxy.stop()
