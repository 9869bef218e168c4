"""Bad input on a live socket: each gets its documented error or close code, and a
second client on the same hub is served throughout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from nats.aio.client import Client as NATS

from hubbub.client import HubbubClient
from hubbub.config import Settings
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import next_pub, publish, raw_socket, receive_json
from tests.support.tokens import TestTokens


@pytest.fixture
async def bystander(client: ClientFactory) -> HubbubClient:
    """Another user on the same hub; each test checks it is still served."""
    c = await client("bystander")
    await c.subscribe("public:calm")
    return c


async def still_served(bystander: HubbubClient, nc: NATS, settings: Settings) -> None:
    sub = bystander.subscriptions["public:calm"]
    offset = await publish(nc, settings, "public:calm", {"still": "here"})
    assert (await next_pub(sub)).offset == offset
    assert await bystander.rpc("test.echo", {"seq": 1}) == {"key": "k", "seq": 1, "payload": {}}


@pytest.fixture
async def raw(ws_url: str, tokens: TestTokens) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A connected socket driven frame by frame."""
    async with aiohttp.ClientSession() as session:
        ws = await raw_socket(ws_url, session)
        await ws.send_str(
            orjson.dumps({"id": 1, "op": "connect", "token": tokens.issue("mallory")}).decode()
        )
        assert "result" in await receive_json(ws)
        yield ws


async def next_reply(ws: aiohttp.ClientWebSocketResponse) -> Any:
    while True:
        frame = await receive_json(ws)
        if frame.get("push") not in ("ping", "presence"):
            return frame


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> int | None:
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
        ):
            return ws.close_code
        if msg.type is aiohttp.WSMsgType.ERROR:
            return ws.close_code


class TestMalformedFrames:
    async def test_invalid_json_is_a_bad_request_with_a_null_id(
        self,
        raw: aiohttp.ClientWebSocketResponse,
        bystander: HubbubClient,
        nc: NATS,
        settings: Settings,
    ) -> None:
        await raw.send_str("{nope")
        reply = await next_reply(raw)
        assert reply["id"] is None
        assert reply["error"]["code"] == "bad_request"
        assert "not valid JSON" in reply["error"]["message"]
        await still_served(bystander, nc, settings)

    async def test_an_unknown_op_is_a_bad_request_echoing_the_id(
        self, raw: aiohttp.ClientWebSocketResponse
    ) -> None:
        await raw.send_str('{"id": 7, "op": "explode"}')
        reply = await next_reply(raw)
        assert (reply["id"], reply["error"]["code"]) == (7, "bad_request")
        assert "unknown op" in reply["error"]["message"]

    async def test_a_missing_id_is_a_bad_request(
        self, raw: aiohttp.ClientWebSocketResponse
    ) -> None:
        await raw.send_str('{"op": "subscribe", "channel": "public:x"}')
        reply = await next_reply(raw)
        assert (reply["id"], reply["error"]["code"]) == (None, "bad_request")
        assert reply["error"]["message"] == "every command needs an integer id"

    async def test_wrong_fields_are_a_validation_error_naming_them(
        self, raw: aiohttp.ClientWebSocketResponse
    ) -> None:
        await raw.send_str('{"id": 3, "op": "subscribe", "chanel": "public:x"}')
        reply = await next_reply(raw)
        assert (reply["id"], reply["error"]["code"], reply["error"]["status"]) == (
            3,
            "validation_failed",
            422,
        )
        locs = sorted(e["loc"][-1] for e in reply["error"]["details"]["errors"])
        assert locs == ["chanel", "channel"]  # the missing one, and the unknown one

    @pytest.mark.parametrize("op", ["history", "subscribe"])
    async def test_an_offset_past_2_to_the_53_is_a_validation_error(
        self, raw: aiohttp.ClientWebSocketResponse, op: str
    ) -> None:
        """The hub reads history from ``offset + 1``, which JetStream takes as a 64-bit
        integer: 2**64 - 1 closed the socket with 4500."""
        await raw.send_str(
            orjson.dumps({"id": 1, "op": "subscribe", "channel": "public:far"}).decode()
        )
        epoch = (await next_reply(raw))["result"]["epoch"]
        await raw.send_str(
            orjson.dumps({"id": 2, "op": "unsubscribe", "channel": "public:far"}).decode()
        )
        assert "result" in await next_reply(raw)
        for command_id, offset in ((3, 2**64 - 1), (4, 2**53 + 1)):
            frame = {"id": command_id, "op": op, "channel": "public:far"}
            await raw.send_str(
                orjson.dumps({**frame, "since": {"offset": offset, "epoch": epoch}}).decode()
            )
            reply = await next_reply(raw)
            assert (reply["id"], reply["error"]["code"]) == (command_id, "validation_failed")
            assert [e["loc"][-2:] for e in reply["error"]["details"]["errors"]] == [
                ["since", "offset"]
            ]
        # the largest is taken: a position past the channel's end
        await raw.send_str(
            orjson.dumps(
                {
                    "id": 5,
                    "op": op,
                    "channel": "public:far",
                    "since": {"offset": 2**53, "epoch": epoch},
                }
            ).decode()
        )
        assert "result" in await next_reply(raw)

    async def test_a_binary_frame_is_a_bad_request(
        self, raw: aiohttp.ClientWebSocketResponse
    ) -> None:
        await raw.send_bytes(b"\x00\x01")
        reply = await next_reply(raw)
        assert reply["error"]["code"] == "bad_request"

    async def test_a_batch_is_answered_in_order(self, raw: aiohttp.ClientWebSocketResponse) -> None:
        batch = [
            {"id": 1, "op": "subscribe", "channel": "public:b"},
            {"id": 2, "op": "unsubscribe", "channel": "public:b"},
        ]
        await raw.send_str(orjson.dumps(batch).decode())
        first, second = await next_reply(raw), await next_reply(raw)
        assert (first["id"], second["id"], second["result"]) == (1, 2, {})

    async def test_too_many_malformed_frames_close_4008(
        self,
        raw: aiohttp.ClientWebSocketResponse,
        bystander: HubbubClient,
        nc: NATS,
        settings: Settings,
    ) -> None:
        for _ in range(settings.ws_max_protocol_errors):
            await raw.send_str("garbage")
        assert await closed_with(raw) == 4008
        await still_served(bystander, nc, settings)


class TestLimits:
    async def test_a_1_mib_frame_closes_1009(
        self,
        raw: aiohttp.ClientWebSocketResponse,
        bystander: HubbubClient,
        nc: NATS,
        settings: Settings,
    ) -> None:
        await raw.send_str(
            '{"id": 1, "op": "publish", "channel": "public:x", "data": {"x": "'
            + "a" * 1_048_576
            + '"}}'
        )
        assert await closed_with(raw) == 1009
        await still_served(bystander, nc, settings)

    async def test_a_thousand_frames_in_a_second_are_rate_limited_then_closed_4008(
        self,
        raw: aiohttp.ClientWebSocketResponse,
        bystander: HubbubClient,
        nc: NATS,
        settings: Settings,
    ) -> None:
        for i in range(1000):
            await raw.send_str(
                orjson.dumps({"id": i, "op": "presence", "channel": "user:mallory"}).decode()
            )
        codes: list[str] = []
        while True:
            msg = await raw.receive(timeout=10)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            frame = orjson.loads(msg.data)
            if "error" in frame:
                codes.append(frame["error"]["code"])
        assert raw.close_code == 4008
        assert "rate_limited" in codes
        await still_served(bystander, nc, settings)

    async def test_subscribing_to_300_channels_stops_at_the_limit(
        self, raw: aiohttp.ClientWebSocketResponse, settings: Settings
    ) -> None:
        limit = settings.ws_max_subscriptions
        errors = []
        for i in range(300):
            await raw.send_str(
                orjson.dumps({"id": i, "op": "subscribe", "channel": f"public:c{i}"}).decode()
            )
            reply = await next_reply(raw)
            if "error" in reply:
                errors.append((i, reply["error"]["code"]))
            await asyncio.sleep(0.012)  # within the command rate
        assert errors == [(i, "too_large") for i in range(limit, 300)]


class TestChannelNames:
    @pytest.mark.parametrize(
        ("channel", "message"),
        [
            ("workspace:*", "1-64 characters"),
            ("public:>", "1-64 characters"),
            ("public:a.b", "1-64 characters"),
            ("nosuchkind:x", "unknown channel kind"),
            ("no-colon", "<kind>:<name>"),
        ],
    )
    async def test_forged_names_and_wildcards_are_refused(
        self, raw: aiohttp.ClientWebSocketResponse, channel: str, message: str
    ) -> None:
        await raw.send_str(orjson.dumps({"id": 9, "op": "subscribe", "channel": channel}).decode())
        reply = await next_reply(raw)
        assert (reply["id"], reply["error"]["code"]) == (9, "bad_request")
        assert message in reply["error"]["message"]

    async def test_subscribing_twice_is_a_conflict(
        self, raw: aiohttp.ClientWebSocketResponse
    ) -> None:
        for i in (1, 2):
            await raw.send_str(
                orjson.dumps({"id": i, "op": "subscribe", "channel": "public:twice"}).decode()
            )
        first, second = await next_reply(raw), await next_reply(raw)
        assert "result" in first
        assert second["error"]["code"] == "conflict"

    async def test_clients_cannot_publish_on_server_channels(
        self, raw: aiohttp.ClientWebSocketResponse
    ) -> None:
        await raw.send_str(
            '{"id": 4, "op": "publish", "channel": "public:news", "data": {"fake": true}}'
        )
        reply = await next_reply(raw)
        assert reply["error"]["code"] == "forbidden"
