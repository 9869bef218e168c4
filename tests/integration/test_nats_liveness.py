"""A NATS link whose server goes silent (half-open: the connection stays up, nothing comes
back) is taken for lost within ``(max_outstanding_pings + 1) * ping_interval_s`` — and a
hub's link pings often enough for that to be seconds, not nats-py's six minutes."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hub.app import NATS_CONN
from hubbub.natsconn import MAX_OUTSTANDING_PINGS, PING_INTERVAL_S, connect_nats
from tests.support.services import ServiceUrls
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

SLACK_S = 3.0  # a loaded machine's scheduling, on top of the bound


def disconnects(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hubbub.natsconn" and r.getMessage().startswith("nats disconnected")
    ]


async def test_a_hubs_link_pings_every_few_seconds(hub_without_workers: Any) -> None:
    """The hub's connection carries the short ping (nats-py's own: every 120 s)."""
    options = hub_without_workers.app[NATS_CONN].options
    assert options["ping_interval"] == PING_INTERVAL_S == 5
    assert options["max_outstanding_pings"] == MAX_OUTSTANDING_PINGS == 3


async def test_a_link_whose_server_goes_silent_is_taken_for_lost_within_the_bound(
    services: ServiceUrls, caplog: pytest.LogCaptureFixture
) -> None:
    """The proxy keeps everything the server sends from the moment it goes silent: the
    pings go unanswered, and the disconnect is reported (the disconnected callback's
    line) within ``MAX_OUTSTANDING_PINGS + 1`` ping intervals; the client then
    reconnects once the server answers again."""
    caplog.set_level(logging.WARNING, logger="hubbub.natsconn")
    interval, outstanding = 0.5, MAX_OUTSTANDING_PINGS
    proxy = TcpProxy.to_url(services.nats_url)
    await proxy.start()
    try:
        conn = await connect_nats(
            proxy.url("nats"),
            "test-silent-link",
            ping_interval_s=interval,
            max_outstanding_pings=outstanding,
        )
    except BaseException:
        await proxy.stop()
        raise
    try:
        await conn.flush()
        reconnects = conn.stats["reconnects"]
        proxy.hold()  # the server goes silent; the connection stays open
        bound = (outstanding + 1) * interval
        await wait_for(
            lambda: disconnects(caplog), timeout=bound + SLACK_S, what="the silence noticed"
        )
        assert not conn.is_connected or conn.stats["reconnects"] > reconnects
        proxy.release()  # the server answers the reconnect
        await wait_for(
            lambda: conn.is_connected and conn.stats["reconnects"] > reconnects,
            what="the link back",
        )
    finally:
        proxy.release()
        await conn.close()
        await proxy.stop()
    assert disconnects(caplog) == ["nats disconnected: ErrStaleConnection: nats: stale connection"]
