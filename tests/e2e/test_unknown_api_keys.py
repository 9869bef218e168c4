"""Unknown publish-API keys cost the guesser, not the workers and the database."""

from __future__ import annotations

import secrets

import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from hub.publish import UNKNOWN_KEYS_PER_MINUTE
from hubbub.config import Settings
from hubbub.contracts.api.apikeys import KEY_PREFIX
from hubbub.contracts.subjects import Subjects
from tests.e2e.test_publish_api import post


@pytest.fixture
def hub_url(hub_server: TestServer) -> str:
    return f"http://127.0.0.1:{hub_server.port}"


def unknown_key() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY_PREFIX}{secrets.token_urlsafe(32)}"}


class TestUnknownKeys:
    async def test_an_unknown_key_is_asked_about_once(
        self, hub_url: str, nc: NATS, settings: Settings
    ) -> None:
        """The second try of the same unknown key is refused from the hub's memory."""
        asked: list[Msg] = []

        async def count(msg: Msg) -> None:
            asked.append(msg)

        sub = await nc.subscribe(
            Subjects(settings.namespace).service("apikeys.authenticate"), cb=count
        )
        await nc.flush()
        key = unknown_key()
        path = "/api/v1/channels/public:x/publish"
        first = await post(hub_url, path, {"data": {}}, key)
        second = await post(hub_url, path, {"data": {}}, key)
        await nc.flush()
        await sub.unsubscribe()
        assert (first[0], second[0], second[1]["code"]) == (401, 401, "unauthorized")
        assert len(asked) == 1

    async def test_an_address_that_keeps_guessing_is_rate_limited(self, hub_url: str) -> None:
        path = "/api/v1/channels/public:x/publish"
        statuses = [
            (await post(hub_url, path, {"data": {}}, unknown_key()))[0]
            for _ in range(UNKNOWN_KEYS_PER_MINUTE)
        ]
        status, body = await post(hub_url, path, {"data": {}}, unknown_key())
        assert set(statuses) == {401}
        assert (status, body["code"]) == (429, "rate_limited")
        assert body["details"]["retry_after"] >= 1
