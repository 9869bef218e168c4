"""``bench bus`` runs NATS as production does (not timed): no anonymous user, the
requester logs in as ``hub`` and the responders as ``worker``, and the bare baseline's
round trip is allowed by those roles' permissions exactly as Hubbub's is.

``python -m pytest bench/test_bus.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bench.bus import BARE_SUBJECT, NAMESPACE, auth_config
from cli.embedded import EmbeddedNats
from cli.embedded.nats_auth import NatsAuthFolder
from hubbub.contracts.subjects import WORKER_QUEUE
from hubbub.nats_barrier import server_has_read
from hubbub.natsauth import HUB_INBOX_PREFIX
from tests.support.nats_errors import ServerErrors


@pytest.fixture
def server(tmp_path: Path) -> Any:
    config = auth_config(tmp_path / "auth")
    nats_server = EmbeddedNats(tmp_path / "nats", config=config)
    nats_server.start()
    yield nats_server, NatsAuthFolder(tmp_path / "auth", NAMESPACE)
    nats_server.stop()


async def connect(url: str, errors: ServerErrors | None = None, **options: Any) -> NATS:
    async def ignore(exc: Exception) -> None:
        pass

    return await nats.connect(
        url,
        allow_reconnect=False,
        connect_timeout=5,
        error_cb=errors.record if errors is not None else ignore,
        **options,
    )


@pytest.fixture
async def roles(server: Any) -> AsyncIterator[tuple[NATS, NATS, ServerErrors]]:
    nats_server, folder = server
    errors = ServerErrors()
    worker = await connect(
        nats_server.url, errors, user="worker", password=folder.password("worker")
    )
    hub = await connect(
        nats_server.url,
        user="hub",
        password=folder.password("hub"),
        inbox_prefix=HUB_INBOX_PREFIX,
    )
    yield hub, worker, errors
    await hub.close()
    await worker.close()


async def test_an_anonymous_client_is_refused(server: Any) -> None:
    nats_server, _ = server
    conn = NATS()
    try:
        with pytest.raises(Exception, match="Authorization Violation"):
            await conn.connect(
                nats_server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5
            )
    finally:
        await conn.close()  # what the refused attempt opened


async def test_the_bare_round_trip_runs_as_hub_and_worker(
    roles: tuple[NATS, NATS, ServerErrors],
) -> None:
    """The baseline's responder serves in the workers' queue group and answers the hub's
    request on the hubs' inbox (a reply the worker may send once)."""
    hub, worker, _ = roles

    async def answer(msg: Msg) -> None:
        await msg.respond(msg.data)

    await worker.subscribe(BARE_SUBJECT, queue=WORKER_QUEUE, cb=answer)
    await server_has_read(worker)  # a flush alone can overtake the SUB (NoRespondersError)
    reply = await hub.request(BARE_SUBJECT, b'{"key":"k0","n":1}', timeout=5)
    assert reply.data == b'{"key":"k0","n":1}'
    assert reply.subject.startswith(HUB_INBOX_PREFIX + ".")


async def test_the_worker_role_still_serves_only_in_its_queue_group(
    roles: tuple[NATS, NATS, ServerErrors],
) -> None:
    """The baseline gets no permission the worker role lacks: outside the queue group
    its subscription is refused."""
    _, worker, errors = roles
    await worker.subscribe(BARE_SUBJECT)
    await worker.flush()
    await errors.wait_for(f'permissions violation for subscription to "{BARE_SUBJECT}"')
