"""A NATS outage, as a client of ``connect_nats`` logs it: one line when the connection
goes (saying why) and one when it is back — not one per reconnect attempt."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hubbub.natsconn import connect_nats
from tests.support.services import ServiceUrls
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for


def said(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "hubbub.natsconn" and r.levelno == level
    ]


async def test_an_outage_is_one_line_when_it_goes_and_one_when_it_is_back(
    services: ServiceUrls, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hubbub.natsconn")
    proxy = TcpProxy.to_url(services.nats_url)
    await proxy.start()
    reconnected = asyncio.Event()

    async def on_reconnected() -> None:
        reconnected.set()

    conn = await connect_nats(proxy.url("nats"), "test-outage-logs", on_reconnected=on_reconnected)
    try:
        await proxy.cut()
        # The link stays down through several refused reconnect attempts.
        await wait_for(lambda: len(said(caplog, logging.DEBUG)) >= 4, timeout=20)
        await proxy.restore()
        await asyncio.wait_for(reconnected.wait(), 10)
    finally:
        await conn.close()
        await proxy.stop()

    warnings = said(caplog, logging.WARNING) + said(caplog, logging.ERROR)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("nats disconnected: ")
    assert "no error given" not in warnings[0]
    assert said(caplog, logging.INFO) == ["nats reconnected"]
