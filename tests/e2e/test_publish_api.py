"""Backend services publish to browsers: the HTTP publish API (service API keys) and
straight onto NATS — both through the documented example service."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.admin.apikeys import manage_keys
from examples.backend_service import publish_over_http, publish_over_nats
from handlers.apikeys import create_key, revoke_key
from hubbub.config import Settings
from hubbub.contracts.key_control import API_KEY_CACHE_S
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import next_pub
from tests.support.raw_http import raw_request
from tests.support.waiting import eventually


@pytest.fixture
def hub_url(hub_server: TestServer) -> str:
    return f"http://127.0.0.1:{hub_server.port}"


async def new_key(db: async_sessionmaker[AsyncSession], name: str, *patterns: str) -> str:
    async with db() as session:
        _, plain = await create_key(session, name, list(patterns))
        await session.commit()
    return plain


async def post(
    hub_url: str, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(hub_url + path, json=body, headers=headers) as r,
    ):
        return r.status, await r.json(content_type=None)


class TestPublishOverHttp:
    async def test_a_service_publication_reaches_subscribers_at_the_offset_it_was_given(
        self, client: ClientFactory, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "news-service", "public:*")
        sub = await (await client("reader")).subscribe("public:news")
        result = await publish_over_http(hub_url, key, "public:news", {"headline": "hi"})
        got = await next_pub(sub)
        assert (got.offset, got.data) == (result["offset"], {"headline": "hi"})

    async def test_a_retried_publish_with_the_same_id_lands_once(
        self, client: ClientFactory, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "retrier", "public:once")
        sub = await (await client("reader")).subscribe("public:once")
        first = await publish_over_http(hub_url, key, "public:once", {"n": 1}, message_id="m-1")
        again = await publish_over_http(hub_url, key, "public:once", {"n": 1}, message_id="m-1")
        assert (again["offset"], again["duplicate"], first["duplicate"]) == (
            first["offset"],
            True,
            False,
        )
        sentinel = await publish_over_http(hub_url, key, "public:once", {"n": 2})
        got = [await next_pub(sub), await next_pub(sub)]  # the one, then the sentinel
        assert [(p.offset, p.data) for p in got] == [
            (first["offset"], {"n": 1}),
            (sentinel["offset"], {"n": 2}),
        ]

    async def test_the_same_id_on_another_channel_is_another_publication(
        self, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "two-channels", "public:*")
        first = await publish_over_http(hub_url, key, "public:left", {"n": 1}, message_id="m")
        other = await publish_over_http(hub_url, key, "public:right", {"n": 1}, message_id="m")
        assert (other["duplicate"], other["offset"] != first["offset"]) == (False, True)

    async def test_data_nested_too_deeply_is_a_422(
        self, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "deep", "public:*")
        body = '{"data": ' + '{"x":' * 300 + "{}" + "}" * 300 + "}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{hub_url}/api/v1/channels/public:deep/publish",
                data=body,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            ) as r,
        ):
            assert (r.status, (await r.json())["code"]) == (422, "validation_failed")

    async def test_data_nested_deeper_than_the_parser_reads_is_a_400(
        self, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """Past 1,024 levels (the body's own included) the body is not JSON to the hub's
        parser: a bad request, not a validation failure naming ``data``."""
        key = await new_key(db, "deeper", "public:*")
        body = '{"data": ' + '{"x":' * 1100 + "{}" + "}" * 1100 + "}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{hub_url}/api/v1/channels/public:deeper/publish",
                data=body,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            ) as r,
        ):
            problem = await r.json()
            assert (r.status, problem["code"]) == (400, "bad_request")
            assert "depth limit" in problem["detail"]

    @pytest.mark.parametrize(
        ("headers", "status", "code"),
        [
            ({}, 401, "unauthorized"),
            ({"Authorization": "Bearer hbk_not-a-real-key"}, 401, "unauthorized"),
            ({"Authorization": "Bearer some-jwt"}, 401, "unauthorized"),
        ],
    )
    async def test_without_a_valid_key_it_is_unauthorized(
        self, hub_url: str, headers: dict[str, str], status: int, code: str
    ) -> None:
        got_status, body = await post(
            hub_url, "/api/v1/channels/public:x/publish", {"data": {}}, headers
        )
        assert (got_status, body["code"]) == (status, code)

    async def test_a_key_publishes_only_where_its_patterns_allow(
        self, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "ticker-only", "ticker:*")
        auth = {"Authorization": f"Bearer {key}"}
        ok, _ = await post(hub_url, "/api/v1/channels/ticker:btc/publish", {"data": {"p": 1}}, auth)
        refused, body = await post(hub_url, "/api/v1/channels/public:x/publish", {"data": {}}, auth)
        assert (ok, refused, body["code"]) == (200, 403, "forbidden")

    async def test_bad_channels_and_bad_data_are_clear_errors(
        self, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "sloppy", "public:*")
        auth = {"Authorization": f"Bearer {key}"}
        wildcard, w = await post(hub_url, "/api/v1/channels/public:*/publish", {"data": {}}, auth)
        not_object, n = await post(
            hub_url, "/api/v1/channels/public:x/publish", {"data": [1, 2]}, auth
        )
        assert (wildcard, w["code"]) == (400, "bad_request")
        assert (not_object, n["code"], n["details"]["errors"][0]["loc"]) == (
            422,
            "validation_failed",
            ["body", "data"],
        )

    async def test_a_body_that_does_not_decode_is_a_bad_request(
        self, hub_server: TestServer, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "garbled", "public:*")
        response = await raw_request(
            hub_server.port,
            "POST",
            b"/api/v1/channels/public:x/publish",
            {
                "Authorization": f"Bearer {key}".encode(),
                "Content-Type": b"application/json",
                "Content-Encoding": b"gzip",
            },
            b"this is not gzip at all",
        )
        body = response.json()
        assert isinstance(body, dict)
        assert (response.status, body["code"]) == (400, "bad_request")
        assert "Content-Encoding: gzip" in body["detail"]

    @pytest.mark.parametrize(
        ("body", "headers", "status", "where"),
        [
            ({"data": {}, "id": 7}, {}, 422, ["body", "id"]),
            ({"data": {}, "id": ""}, {}, 422, ["body", "id"]),
            ({"data": {}, "id": "x" * 201}, {}, 422, ["body", "id"]),
            ({"data": {}}, {"Idempotency-Key": ""}, 400, None),
            ({"data": {}}, {"Idempotency-Key": "k" * 201}, 400, None),
            ({"data": {}, "id": "fine"}, {"Idempotency-Key": "not ascii é"}, 400, None),
        ],
    )
    async def test_a_malformed_id_or_idempotency_key_is_refused_and_nothing_published(
        self,
        hub_url: str,
        db: async_sessionmaker[AsyncSession],
        client: ClientFactory,
        body: dict[str, Any],
        headers: dict[str, str],
        status: int,
        where: list[str] | None,
    ) -> None:
        key = await new_key(db, "careless", "public:*")
        sub = await (await client("reader")).subscribe("public:ids")
        auth = {"Authorization": f"Bearer {key}", **headers}
        got, answer = await post(hub_url, "/api/v1/channels/public:ids/publish", body, auth)
        assert got == status
        if where is not None:
            assert answer["details"]["errors"][0]["loc"] == where
        else:
            assert "idempotency key" in answer["detail"].lower().replace("-", " ")
        sentinel = await publish_over_http(hub_url, key, "public:ids", {"sentinel": True})
        got = await next_pub(sub)  # the first publication on the channel is the sentinel
        assert (got.offset, got.data) == (sentinel["offset"], {"sentinel": True})

    async def test_a_revoked_key_is_refused(
        self, hub_url: str, db: async_sessionmaker[AsyncSession]
    ) -> None:
        key = await new_key(db, "leaked", "public:*")
        async with db() as session:
            await revoke_key(session, "leaked")
            await session.commit()
        status, body = await post(
            hub_url, "/api/v1/channels/public:x/publish", {"data": {}}, {"X-Api-Key": key}
        )
        assert (status, body["code"]) == (401, "unauthorized")

    async def test_a_key_revoked_while_a_hub_remembers_it_stops_at_once(
        self, hub_url: str, db: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        """``hubbub apikey revoke`` tells every hub: the key stops well before the hub's
        memory of its check (API_KEY_CACHE_S) would have run out."""
        key = await new_key(db, "leaked-later", "public:*")
        path, auth = "/api/v1/channels/public:x/publish", {"X-Api-Key": key}
        assert (await post(hub_url, path, {"data": {}}, auth))[0] == 200  # now remembered
        out = io.StringIO()
        assert await manage_keys(settings, "revoke", name="leaked-later", out=out) == 0
        assert "every hub has been told" in out.getvalue()

        async def refused() -> None:
            status, body = await post(hub_url, path, {"data": {}}, auth)
            assert (status, body["code"]) == (401, "unauthorized")

        await eventually(refused, timeout=API_KEY_CACHE_S / 3)


class TestPublishOverNats:
    async def test_a_service_inside_the_deployment_publishes_straight_to_the_subject(
        self, client: ClientFactory, settings: Settings
    ) -> None:
        sub = await (await client("reader")).subscribe("public:direct")
        offset = await publish_over_nats(
            settings.nats_url or "",
            "public:direct",
            {"text": "hello"},
            namespace=settings.namespace,
        )
        got = await next_pub(sub)
        assert (got.offset, got.data) == (offset, {"text": "hello"})
