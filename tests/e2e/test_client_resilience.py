"""``HubbubClient`` over a long life: a restore of more channels than the hub's command
burst, a subscribe made while it reconnects, refusals that pass and ones that do not,
a connect that cannot succeed, and its connection loop failing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from nats.aio.client import Client as NATS

from hub.ws.service import Realtime
from hubbub.client import ClientClosed, ConnectionState, HubbubClient, RemoteError, RpcTimeout
from hubbub.client import client as client_module
from hubbub.client.client import PUSHES_KEPT
from hubbub.config import Settings
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import control, next_pub, publish
from tests.support.ports import free_port
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for


async def subscribe_paced(c: HubbubClient, channel: str) -> None:
    """Subscribe as an application would over the hub's command rate: wait, retry."""
    while True:
        try:
            await c.subscribe(channel)
            return
        except RemoteError as exc:
            if exc.code != "rate_limited":
                raise
            await asyncio.sleep(float(exc.details["retry_after"]) + 0.01)


class TestRestoringManyChannels:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"ws_commands_per_s": 50.0, "ws_commands_burst": 10})

    async def test_more_channels_than_the_command_burst_are_all_restored(
        self, client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
    ) -> None:
        """Each new socket starts with one burst: a restore that reconnects on
        ``rate_limited`` never gets past it."""
        c = await client("many", backoff_max=0.2)
        channels = [f"public:many-{n}" for n in range(30)]
        for channel in channels:
            await subscribe_paced(c, channel)
        connects = realtime.stats["connects"]
        await c.drop()
        await wait_for(lambda: realtime.stats["connects"] > connects, what="a new socket")
        await c.wait_live(timeout=20)
        assert sorted(c.subscriptions) == sorted(channels)
        offset = await publish(nc, settings, channels[-1], {"n": 1})
        assert (await next_pub(c.subscriptions[channels[-1]])).offset == offset
        assert realtime.stats["connects"] == connects + 1  # restored on the one socket


class TestSubscribeWhileReconnecting:
    async def test_a_subscribe_made_while_reconnecting_is_made_once(
        self, ws_url: str, tokens: TestTokens, nc: NATS, settings: Settings
    ) -> None:
        """The subscribe waits for the new socket; the restore leaves it to that call
        (it would otherwise be sent twice: ``conflict``, and the record dropped)."""
        release = asyncio.Event()
        asked = 0

        async def token() -> str:
            nonlocal asked
            asked += 1
            if asked == 2:  # the reconnect waits here until the subscribe is made
                await release.wait()
            return tokens.issue("late")

        c = HubbubClient(ws_url, token, backoff_min=0.001, backoff_max=0.001)
        await c.connect()
        try:
            await c.drop()
            await wait_for(lambda: asked == 2, what="the reconnect under way")
            assert c.state is ConnectionState.RECONNECTING
            subscribing = asyncio.ensure_future(c.subscribe("public:late"))
            await wait_for(lambda: "public:late" in c.subscriptions, what="the subscribe made")
            release.set()
            sub = await asyncio.wait_for(subscribing, 10)
            assert c.subscriptions == {"public:late": sub}
            offset = await publish(nc, settings, "public:late", {"n": 1})
            assert (await next_pub(sub)).offset == offset
            # The hub holds it once: a second subscribe is the conflict, this time ours.
            with pytest.raises(RemoteError) as again:
                await c._command({"op": "subscribe", "channel": "public:late"})
            assert again.value.code == "conflict"
        finally:
            await c.close()


class TestRefusals:
    async def test_a_refusal_after_drops_in_a_long_life_is_retried(
        self, ws_url: str, tokens: TestTokens
    ) -> None:
        """Three network drops over the client's life, then one connect with an expired
        token: it is refused once, and the next connect (a fresh token) goes live."""
        calls = 0

        async def token() -> str:
            nonlocal calls
            calls += 1
            return tokens.issue("long-life", ttl=-100 if calls == 5 else 900)

        c = HubbubClient(ws_url, token, backoff_min=0.001, backoff_max=0.01)
        await c.connect()
        try:
            for _ in range(4):
                before = calls
                await c.drop()
                await wait_for(
                    lambda: calls > before and c.state is ConnectionState.LIVE,  # noqa: B023
                    what="live again",
                )
            assert calls == 6  # the 5th was refused
            assert isinstance(c.last_error, RemoteError)
        finally:
            await c.close()

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"max_sockets_per_user": 1})

    async def test_too_many_sockets_is_retried_until_one_is_free(
        self, client: ClientFactory, ws_url: str, tokens: TestTokens
    ) -> None:
        first = await client("crowded")
        calls = 0

        async def token() -> str:
            nonlocal calls
            calls += 1
            return tokens.issue("crowded")

        second = HubbubClient(ws_url, token, backoff_min=0.001, backoff_max=0.01)
        connecting = asyncio.ensure_future(second.connect())
        try:
            await wait_for(lambda: calls > 5, what="several refused connects")
            assert isinstance(second.last_error, RemoteError)
            assert second.last_error.code == "rate_limited"
            await first.close()
            await asyncio.wait_for(connecting, 10)
            assert second.state is ConnectionState.LIVE
        finally:
            await second.close()

    async def test_a_deactivated_account_is_refused_for_good_at_once(
        self, client: ClientFactory, ws_url: str, tokens: TestTokens, nc: NATS, settings: Settings
    ) -> None:
        live = await client("gone")
        await control(
            nc,
            settings,
            "gone",
            {"type": "deactivated", "user_id": "gone", "until": time.time() + 60},
        )
        await wait_for(lambda: live.state is ConnectionState.CLOSED, what="the socket closed")
        calls = 0

        async def token() -> str:
            nonlocal calls
            calls += 1
            return tokens.issue("gone")

        c = HubbubClient(ws_url, token, backoff_min=0.001, backoff_max=0.01)
        with pytest.raises(RemoteError) as refused:
            await c.connect()
        assert refused.value.details.get("reason") == "deactivated"
        assert calls == 1
        assert c.state is ConnectionState.CLOSED


class TestConnectThatCannotSucceed:
    async def test_a_refused_upgrade_is_raised_at_once_and_nothing_goes_on(
        self, ws_url: str, tokens: TestTokens
    ) -> None:
        c = HubbubClient(ws_url.replace("/ws", "/wrong-path"), tokens.issue("lost"))
        started = time.monotonic()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await c.connect()
        assert refused.value.status == 404
        assert time.monotonic() - started < 10
        assert c.state is ConnectionState.CLOSED
        assert c._runner is not None
        assert c._runner.done()  # nothing goes on connecting in the background

    async def test_a_connect_that_times_out_names_the_last_error_and_stops(self) -> None:
        c = HubbubClient(f"ws://127.0.0.1:{free_port()}/ws", "token", backoff_max=0.05)
        with pytest.raises(TimeoutError) as timed_out:
            await c.connect(timeout=0.5)
        assert "last error" in str(timed_out.value)
        assert c._runner is not None
        assert c._runner.done()  # nothing goes on connecting in the background
        assert c.state is ConnectionState.CLOSED


class TestAConnectionLoopThatRunsLong:
    async def test_a_thousand_failed_attempts_do_not_end_it(self) -> None:
        """The backoff doubles per attempt; its exponent stops growing (2**1024 is no
        float), and the loop keeps trying."""
        c = HubbubClient(f"ws://127.0.0.1:{free_port()}/ws", "token", backoff_min=1e-9)
        c.backoff_max = 1e-9
        c._session = aiohttp.ClientSession()
        c._runner = asyncio.ensure_future(c._run())
        try:
            await wait_for(
                lambda: c.reconnects > 1100 or c._runner.done(),  # type: ignore[union-attr]
                timeout=120,
                what="1100 attempts",
            )
            assert not c._runner.done()
            assert c.state is ConnectionState.RECONNECTING
        finally:
            await c.close()
            await c._session.close()

    async def test_a_failing_loop_closes_the_client_and_says_why(
        self, client: ClientFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        c = await client("failing")

        def broken(a: float, b: float) -> float:
            raise ZeroDivisionError("a bug in the backoff")

        monkeypatch.setattr(client_module.random, "uniform", broken)
        await c.drop()
        await wait_for(lambda: c.state is ConnectionState.CLOSED, what="closed")
        with pytest.raises(ClientClosed, match="a bug in the backoff"):
            await c.rpc("test.echo", {"seq": 1})
        with pytest.raises(ClientClosed, match="a bug in the backoff"):
            await c.wait_live(timeout=1)


class TestRpcKeys:
    async def test_an_rpc_that_times_out_gives_its_key_to_retry_with(
        self, client: ClientFactory
    ) -> None:
        c = await client("retrier")
        params: dict[str, Any] = {"key": "retried", "seq": 1, "delay": 1.0}
        with pytest.raises(RpcTimeout) as timed_out:
            await c.rpc("test.echo", params, timeout=0.1)
        key = timed_out.value.idempotency_key
        assert key in str(timed_out.value)
        again = await c.rpc("test.echo", params, idempotency_key=key)
        assert again == {"key": "retried", "seq": 1, "payload": {}}

    async def test_a_remote_error_carries_the_rpcs_key(self, client: ClientFactory) -> None:
        c = await client("wrong")
        with pytest.raises(RemoteError) as failed:
            await c.rpc("test.echo", {"seq": "not a number"}, idempotency_key="my-key")
        assert (failed.value.code, failed.value.idempotency_key) == ("validation_failed", "my-key")


class TestPushes:
    async def test_unread_pushes_are_kept_to_a_bound(self) -> None:
        c = HubbubClient("ws://127.0.0.1:1/ws", "token")
        for n in range(PUSHES_KEPT + 5):
            c._keep_push({"push": "gap", "n": n})
        assert (c.pushes.qsize(), c.pushes_dropped) == (PUSHES_KEPT, 5)
        assert c.pushes.get_nowait()["n"] == 5  # the oldest went first
