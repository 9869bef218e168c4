"""The publish API's limits: a publication must fit one NATS message with its headers
(else 413, and the hub's NATS link is untouched)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.state import NATS_CONN
from hubbub.config import Settings
from hubbub.natsconn import message_size
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_publish_api import new_key
from tests.e2e.test_realtime import next_pub


@pytest.fixture
def hub_url(hub_server: TestServer) -> str:
    return f"http://127.0.0.1:{hub_server.port}"


async def post_raw(
    hub_url: str, channel: str, body: bytes, key: str, **headers: str
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{hub_url}/api/v1/channels/{channel}/publish",
            data=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        ) as r,
    ):
        return r.status, await r.json(content_type=None)


def body_of_size(size: int, tail: bytes = b"}") -> bytes:
    """``{"data":{"x":"aaa…"}<tail>`` of exactly ``size`` bytes."""
    head = b'{"data":{"x":"'
    return head + b"a" * (size - len(head) - 2 - len(tail)) + b'"}' + tail


class TestOneNatsMessage:
    async def test_a_largest_body_with_an_id_is_too_large_and_the_hub_keeps_serving(
        self,
        client: ClientFactory,
        hub_url: str,
        hub_server: TestServer,
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """A body at the size limit fits ``max_payload``; its ``Nats-Msg-Id`` header does
        not. Sent, it would make NATS close the hub's connection for good."""
        app: web.Application = hub_server.app
        nc = app[NATS_CONN]
        key = await new_key(db, "big", "public:*")
        sub = await (await client("reader")).subscribe("public:big")
        body = body_of_size(settings.max_body_bytes, b',"id":"retry-safe-1"}')
        stored = orjson.dumps(orjson.loads(body)["data"])
        headers = {"Nats-Msg-Id": "big:public:big:retry-safe-1"}
        assert len(stored) <= nc.max_payload < message_size(stored, headers)

        status, problem = await post_raw(hub_url, "public:big", body, key)
        assert (status, problem["code"]) == (413, "too_large"), problem

        assert nc.is_connected
        status, after = await post_raw(hub_url, "public:big", b'{"data":{"n":1}}', key)
        assert status == 200, after
        assert (await next_pub(sub)).data == {"n": 1}  # the big one was never published
        async with aiohttp.ClientSession() as session, session.get(hub_url + "/api/v1/ready") as r:
            assert r.status == 200, await r.text()

    async def test_data_that_grows_when_stored_past_the_limit_is_too_large_not_unavailable(
        self, hub_url: str, db: async_sessionmaker[AsyncSession], hub_server: TestServer
    ) -> None:
        """``1e5`` is stored as ``100000.0``: the body fits, the publication does not."""
        nc = hub_server.app[NATS_CONN]
        key = await new_key(db, "grows", "public:*")
        count = nc.max_payload // 7
        body = b'{"data":{"x":[' + b",".join([b"1e5"] * count) + b"]}}"
        assert len(body) < nc.max_payload < count * len(b"100000.0,")
        status, problem = await post_raw(hub_url, "public:grows", body, key)
        assert (status, problem["code"]) == (413, "too_large"), problem
        assert nc.is_connected
