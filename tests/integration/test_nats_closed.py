"""A NATS connection the server closes for good (nats-py does not reconnect after a
server's ``-ERR``): ``connect_nats`` says so in one error line and ends the process for
its supervisor to start it again — unless the close was asked for (``close``, ``drain``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import textwrap

import pytest
from nats.aio.client import Client as NATS

from hubbub.natsconn import NATS_CLOSED_EXIT, connect_nats, message_size
from tests.support.processes import ROOT
from tests.support.services import ServiceUrls


async def violate_max_payload(conn: NATS) -> None:
    """A message whose payload fits ``max_payload`` (nats-py lets it go) but whose
    headers take it over (the server answers ``-ERR`` and closes the connection)."""
    headers = {"Nats-Msg-Id": "x" * 100}
    payload = b"a" * (conn.max_payload - 10)
    assert len(payload) <= conn.max_payload < message_size(payload, headers)
    await conn.publish("test.too-big", payload, headers=headers)
    with contextlib.suppress(Exception):  # the server may close before it answers the PING
        await conn.flush(timeout=5)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hubbub.natsconn" and r.levelno >= logging.ERROR
    ]


async def test_a_connection_closed_by_the_server_is_one_error_and_calls_on_closed(
    services: ServiceUrls, caplog: pytest.LogCaptureFixture
) -> None:
    closed = asyncio.Event()
    conn = await connect_nats(services.nats_url, "test-closed", on_closed=closed.set)
    try:
        await violate_max_payload(conn)
        await asyncio.wait_for(closed.wait(), 10)
        assert conn.is_closed
    finally:
        await conn.close()
    [line] = errors(caplog)
    assert "closed for good" in line
    assert "maximum payload violation" in line.lower()


@pytest.mark.parametrize("how", ["close", "drain", "async with"])
async def test_a_close_asked_for_is_not_a_closed_link(
    services: ServiceUrls, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    called: list[str] = []
    conn = await connect_nats(
        services.nats_url, "test-closed", on_closed=lambda: called.append(how)
    )
    if how == "close":
        await conn.close()
    elif how == "drain":
        await conn.drain()
    else:
        async with conn:
            pass
    assert conn.is_closed
    assert (called, errors(caplog)) == ([], [])


SCRIPT = """
import asyncio, sys
import uvloop
from aiohttp import web
from hubbub.natsconn import connect_nats
from tests.integration.test_nats_closed import violate_max_payload

URL, RUNNER = sys.argv[1], sys.argv[2]

async def work():
    nc = await connect_nats(URL, "test-closed-process")
    try:
        await violate_max_payload(nc)
        await asyncio.sleep(30)  # the process ends before this does
    finally:
        print("cleaned up", flush=True)

if RUNNER == "asyncio.run":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(work())
else:  # as the hub runs: hub.main.run_hub, on uvloop
    from hub.main import run_hub
    from hubbub.config import Settings

    async def ctx(app):
        task = asyncio.ensure_future(work())
        yield
        task.cancel()
        print("app cleaned up", flush=True)

    app = web.Application()
    app.cleanup_ctx.append(ctx)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    run_hub(app, Settings(_env_file=None, host="127.0.0.1"), 0)
"""


@pytest.mark.parametrize("runner", ["asyncio.run", "run_hub"])
def test_a_process_whose_connection_is_closed_for_good_exits_for_a_restart(
    services: ServiceUrls, runner: str
) -> None:
    """As a worker (``asyncio.run``) and a hub (``hub.main.run_hub``) run: the process ends
    with NATS_CLOSED_EXIT after its cleanup, and its log says why."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), services.nats_url, runner],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == NATS_CLOSED_EXIT, done.stderr
    assert "cleaned up" in done.stdout
    if runner == "run_hub":
        assert "app cleaned up" in done.stdout
    assert "nats connection closed for good" in done.stderr
    assert "maximum payload violation" in done.stderr.lower()
