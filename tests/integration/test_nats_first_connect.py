"""The first connect of ``connect_nats`` is bounded: a NATS that is not there, or that
refuses the client's credentials, is tried again for ``first_connect_s`` (its first
failure one warning), then ``NatsUnavailable`` names the last error. Once connected, a
lost connection is reconnected for as long as it takes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.embedded.nats_auth import NatsAuthFolder
from cli.embedded.process import free_port
from cli.embedded.servers import EmbeddedNats
from hubbub.natsauth import NatsAuth
from hubbub.natsconn import NatsUnavailable, connect_nats
from tests.support.nats_auth import made_auth_folder
from tests.support.services import ServiceUrls
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

# Far above the budgets below: a connect that never gives up fails the test, not the run.
GIVE_UP_WITHIN_S = 20


def said(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "hubbub.natsconn" and r.levelno == level
    ]


async def test_a_server_nobody_listens_on_is_given_up_on_with_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hubbub.natsconn")
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(NatsUnavailable) as failed:
        await asyncio.wait_for(
            connect_nats(url, "test-unreachable", first_connect_s=1.5), GIVE_UP_WITHIN_S
        )
    assert isinstance(failed.value.last, ConnectionRefusedError)
    assert str(failed.value).startswith("no connection within 1.5 s (ConnectionRefusedError: ")
    # Tried again meanwhile, but only the first failure is a warning.
    assert said(caplog, logging.WARNING) == [
        "nats: cannot connect (ConnectionRefusedError: "
        + str(failed.value.last)
        + "); trying again for up to 1.5 s"
    ]


async def test_a_command_that_says_why_itself_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hubbub.natsconn")
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(NatsUnavailable):
        await asyncio.wait_for(
            connect_nats(url, "test-quiet", first_connect_s=0.5, warn_while_connecting=False),
            GIVE_UP_WITHIN_S,
        )
    assert said(caplog, logging.WARNING) + said(caplog, logging.ERROR) == []


@pytest.fixture
def auth_folder(tmp_path: Path) -> NatsAuthFolder:
    return made_auth_folder(tmp_path, "")


@pytest.fixture
def auth_nats(tmp_path: Path, auth_folder: NatsAuthFolder) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats", config=auth_folder.config_path)
    server.start()
    yield server
    server.stop()


async def test_credentials_the_server_refuses_are_given_up_on(
    auth_nats: EmbeddedNats, auth_folder: NatsAuthFolder
) -> None:
    wrong = NatsAuth(user="worker", password=auth_folder.password("hub"))
    with pytest.raises(NatsUnavailable) as failed:
        await asyncio.wait_for(
            connect_nats(auth_nats.url, "test-refused", auth=wrong, first_connect_s=1.5),
            GIVE_UP_WITHIN_S,
        )
    assert "Authorization Violation" in str(failed.value)


async def test_once_connected_it_reconnects_past_the_first_connects_bound(
    services: ServiceUrls, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused reconnect attempts for longer than ``first_connect_s``: still trying,
    and back once the server is."""
    caplog.set_level(logging.DEBUG, logger="hubbub.natsconn")
    proxy = TcpProxy.to_url(services.nats_url)
    await proxy.start()
    reconnected = asyncio.Event()

    async def on_reconnected() -> None:
        reconnected.set()

    conn = await connect_nats(
        proxy.url("nats"), "test-reconnects", on_reconnected=on_reconnected, first_connect_s=0.5
    )
    try:
        await proxy.cut()
        # Reconnect attempts are 0.5 s apart: four refused ones outlast the bound.
        refused = "nats connection error: ConnectionRefusedError"
        await wait_for(
            lambda: sum(m.startswith(refused) for m in said(caplog, logging.DEBUG)) >= 4,
            timeout=20,
            what="refused reconnect attempts",
        )
        assert not conn.is_closed
        await proxy.restore()
        await asyncio.wait_for(reconnected.wait(), 10)
    finally:
        await conn.close()
        await proxy.stop()
