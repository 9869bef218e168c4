"""The publish API's limits: a publication must fit one NATS message with its headers
(else 413, and the hub's NATS link is untouched); each key has a budget of publications
and bytes on each hub (429 past it); a burst of unknown keys from one address reaches
the workers only up to the address's allowance."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.app import create_app
from hub.publish import UNKNOWN_KEYS_PER_MINUTE
from hub.state import NATS_CONN
from hubbub.config import Rate, Settings
from hubbub.contracts.api.apikeys import KEY_PREFIX
from hubbub.contracts.envelope import H_ERROR
from hubbub.contracts.subjects import Subjects
from hubbub.natsconn import message_size
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_publish_api import new_key
from tests.e2e.test_realtime import next_pub
from tests.support import ops
from tests.support.waiting import wait_for


@pytest.fixture
def hub_url(hub_server: TestServer) -> str:
    return f"http://127.0.0.1:{hub_server.port}"


async def post_raw(hub_url: str, channel: str, body: bytes, key: str) -> tuple[int, dict[str, Any]]:
    status, answer, _ = await post_with_headers(hub_url, channel, body, key)
    return status, answer


async def post_with_headers(
    hub_url: str, channel: str, body: bytes, key: str
) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{hub_url}/api/v1/channels/{channel}/publish",
            data=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        ) as r,
    ):
        return r.status, await r.json(content_type=None), r.headers


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


class TestKeyBudget:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "publish_api_per_key": Rate(3, 3600),
                "publish_api_bytes_per_key": Rate(2000, 3600),
            }
        )

    async def test_a_key_over_its_publications_is_rate_limited_and_others_are_not(
        self, client: ClientFactory, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        flooder = await new_key(db, "flooder", "public:*")
        other = await new_key(db, "other", "public:*")
        sub = await (await client("reader")).subscribe("public:budget")
        for n in range(3):
            status, _ = await post_raw(hub_url, "public:budget", b'{"data":{"n":%d}}' % n, flooder)
            assert status == 200
        status, problem, headers = await post_with_headers(
            hub_url, "public:budget", b'{"data":{"n":3}}', flooder
        )
        assert (status, problem["code"]) == (429, "rate_limited"), problem
        assert int(headers["Retry-After"]) >= 1
        status, _ = await post_raw(hub_url, "public:budget", b'{"data":{"n":"other"}}', other)
        assert status == 200
        got = [(await next_pub(sub)).data for _ in range(4)]
        assert got == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": "other"}]  # not n=3

    async def test_a_key_over_its_bytes_is_rate_limited(
        self, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "bytes", "public:*")
        body = orjson.dumps({"data": {"x": "a" * 1200}})
        assert (await post_raw(hub_url, "public:bytes", body, key))[0] == 200
        status, problem = await post_raw(hub_url, "public:bytes", body, key)
        assert (status, problem["code"]) == (429, "rate_limited"), problem
        small = await post_raw(hub_url, "public:bytes", b'{"data":{}}', key)
        assert small[0] == 200  # what is left of the budget still publishes

    async def test_a_publication_over_the_whole_byte_budget_is_too_large(
        self, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "huge", "public:*")
        body = orjson.dumps({"data": {"x": "a" * 3000}})
        status, problem = await post_raw(hub_url, "public:huge", body, key)
        assert (status, problem["code"], problem["details"]["limit"]) == (413, "too_large", 2000), (
            problem
        )


def unknown_key() -> str:
    return f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"


class TestAKeyBeingAskedAbout:
    async def test_a_burst_of_unknown_keys_reaches_the_workers_only_up_to_the_allowance(
        self, settings: Settings, aiohttp_server: Any, nc: NATS
    ) -> None:
        """The test answers for the workers, and only once every request was either
        asked about or answered: the answers cannot come back between the requests."""
        hub = await aiohttp_server(create_app(settings, ops.catalog_with_tests()))
        hub_url = f"http://127.0.0.1:{hub.port}"
        asked: list[Msg] = []

        async def collect(msg: Msg) -> None:
            asked.append(msg)

        subject = Subjects(settings.namespace).service("apikeys.authenticate")
        await nc.subscribe(subject, cb=collect)
        await nc.flush()
        burst = 3 * UNKNOWN_KEYS_PER_MINUTE
        posts = [
            asyncio.ensure_future(post_raw(hub_url, "public:x", b'{"data":{}}', unknown_key()))
            for _ in range(burst)
        ]
        await wait_for(
            lambda: len(asked) + sum(p.done() for p in posts) == burst,
            what="every request asked about or answered",
        )
        error = {"code": "unauthorized", "message": "unknown API key", "status": 401}
        for msg in asked:
            await nc.publish(msg.reply, orjson.dumps(error), headers={H_ERROR: "unauthorized"})
        statuses = sorted(status for status, _ in await asyncio.gather(*posts))
        assert len(asked) == UNKNOWN_KEYS_PER_MINUTE
        assert statuses == [401] * UNKNOWN_KEYS_PER_MINUTE + [429] * (
            burst - UNKNOWN_KEYS_PER_MINUTE
        )

    async def test_requests_with_a_key_being_asked_about_wait_for_the_one_answer(
        self, settings: Settings, aiohttp_server: Any, nc: NATS
    ) -> None:
        """More requests with one valid key than an address may present unknown keys:
        one question, every request published (none counted as a guess)."""
        hub = await aiohttp_server(create_app(settings, ops.catalog_with_tests()))
        hub_url = f"http://127.0.0.1:{hub.port}"
        asked: list[Msg] = []

        async def collect(msg: Msg) -> None:
            asked.append(msg)

        subject = Subjects(settings.namespace).service("apikeys.authenticate")
        await nc.subscribe(subject, cb=collect)
        await nc.flush()
        key = unknown_key()  # valid: the test, as the worker, says so
        many = 2 * UNKNOWN_KEYS_PER_MINUTE
        posts = [
            asyncio.ensure_future(post_raw(hub_url, "public:one", b'{"data":{}}', key))
            for _ in range(many)
        ]
        await wait_for(lambda: asked, what="the key asked about")
        identity = {"name": "svc", "channels": ["public:*"]}
        for msg in asked:
            await nc.publish(msg.reply, orjson.dumps(identity))
        statuses = [status for status, _ in await asyncio.gather(*posts)]
        assert statuses == [200] * many
        assert len(asked) < many
