"""The bus and the actor runtime, end to end over real NATS, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest

from hubbub.bus import RETRY_FIRST_S, RETRY_MARGIN_S, RETRY_MAX_S, Bus
from hubbub.contracts.errors import (
    BadGateway,
    Internal,
    NotFound,
    Timeout,
    Unavailable,
    ValidationFailed,
)
from hubbub.contracts.operations import Access, Operation
from tests.support import ops
from tests.support.ops import EchoParams, EchoResult
from tests.support.waiting import wait_for
from workers.app import RunningWorker


class TestRoundTrip:
    async def test_a_request_comes_back_with_its_result(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        """The result is validated and handed back both raw and parsed."""
        reply = await bus.request(
            ops.echo, {"key": "a", "seq": 7, "payload": {"x": [1, 2]}}, caller=None
        )
        assert reply.value == EchoResult(key="a", seq=7, payload={"x": [1, 2]})
        assert b'"seq":7' in reply.raw

    async def test_the_readiness_operation_reaches_postgres_and_redis(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        """system.ready is a real worker round trip touching both stores."""
        reply = await bus.request(ops.catalog_with_tests()["system.ready"], {}, caller=None)
        assert reply.value.postgres.ok
        assert reply.value.redis.ok

    async def test_params_that_fail_validation_in_the_worker_are_a_validation_error(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        """A backend calling NATS directly is validated like a client of the hub."""
        with pytest.raises(ValidationFailed) as caught:
            await bus.request(ops.echo, {"seq": "not a number"}, caller=None)
        assert caught.value.details["errors"][0]["loc"] == ["seq"]

    async def test_an_operation_without_a_handler_is_not_found(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        unknown = Operation("test.nobody_handles", EchoParams, EchoResult, Access.PUBLIC)
        with pytest.raises(NotFound):
            await bus.request(unknown, {}, caller=None)


def _asks_within(timeout: float) -> int:
    """How many times the bus asks a request that finds no worker before it gives up, by
    its backoff schedule alone: the first ask, and each ask again whose pause ends before
    the margin ahead of the deadline (one due exactly at the margin is not counted: any
    time the asks themselves take puts it past)."""
    window = timeout - min(RETRY_MARGIN_S, timeout / 5)
    spent, pause, asks = 0.0, RETRY_FIRST_S, 1
    while spent + pause < window - 1e-9:
        spent += pause
        asks += 1
        pause = min(pause * 2, RETRY_MAX_S)
    return asks


class TestFailureMapping:
    async def test_no_worker_listening_is_unavailable_shortly_before_the_deadline(
        self,
        nc: object,
        bus: Bus,
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """No responders → asked again until shortly before the deadline, then 503
        unavailable (the bus gives up itself: not a 504 timeout at the deadline); one
        line for the episode, not one per retry. No worker has ever answered this bus:
        it waits for them (info), nothing "went away". (When it gives up is the bus's
        retry schedule, on its own clock; not timed here.)"""
        asked = 0
        request = bus.replies.request

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal asked
            asked += 1
            return await request(*args, **kwargs)

        monkeypatch.setattr(bus.replies, "request", counted)
        with caplog.at_level(logging.INFO), pytest.raises(Unavailable) as caught:
            await bus.request(ops.echo, {}, caller=None, timeout=1)
        assert caught.value.status == 503
        assert caught.value.retry_after == 1
        # Kept looking, on the backoff schedule until the margin before the deadline
        # (one fewer allowed: the asks themselves take some of the time).
        assert asked >= _asks_within(timeout=1) - 1
        assert [
            (r.levelno, r.getMessage()) for r in caplog.records if r.name == "hubbub.dependencies"
        ] == [(logging.INFO, "waiting for workers: no worker answers test.echo")]

    async def test_workers_that_answered_and_are_gone_went_away(
        self, settings: Any, nc: object, bus: Bus, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Once a worker has answered this bus, no worker is an outage: one warning, and
        one line when a worker answers again."""
        from workers.app import worker_running

        async with worker_running(settings, ops.registry_with_tests()):
            assert (await bus.request(ops.echo_unkeyed, {"seq": 1}, caller=None)).value.seq == 1
        with caplog.at_level(logging.INFO, logger="hubbub.dependencies"):
            with pytest.raises(Unavailable):
                await bus.request(ops.echo_unkeyed, {"seq": 2}, caller=None, timeout=1)
            async with worker_running(settings, ops.registry_with_tests()):
                assert (await bus.request(ops.echo_unkeyed, {"seq": 3}, caller=None)).value.seq
        assert [
            (r.levelno, r.getMessage().split(" after ")[0])
            for r in caplog.records
            if r.name == "hubbub.dependencies"
        ] == [
            (logging.WARNING, "workers went away: no worker answers test.echo_unkeyed"),
            (logging.INFO, "workers came back"),
        ]

    async def test_a_worker_that_subscribes_late_gets_the_request(
        self, settings: Any, nc: object, bus: Bus, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A worker starting after the bus: the request waits for it instead of
        failing; once it answers, one line says so."""
        from workers.app import worker_running

        pending = asyncio.ensure_future(bus.request(ops.echo_unkeyed, {"seq": 9}, caller=None))
        # The barrier: the bus has been told "no responders" at least once.
        await wait_for(lambda: _true(bus.health.is_down("workers")), timeout=5)
        with caplog.at_level(logging.INFO, logger="hubbub.dependencies"):
            async with worker_running(settings, ops.registry_with_tests()):
                assert (await pending).value.seq == 9
        assert not bus.health.down
        assert [
            r.getMessage().split(" after ")[0]
            for r in caplog.records
            if r.name == "hubbub.dependencies" and r.levelno == logging.INFO
        ] == ["workers answered"]

    async def test_a_busy_refusal_is_asked_again_within_the_deadline(
        self, worker: RunningWorker, bus: Bus, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A full mailbox refuses work it never started; the bus sends it again and the
        caller gets the result (here: mailbox of one, three requests for one key)."""
        worker.service.actors.mailbox_size = 1
        with caplog.at_level(logging.WARNING, logger="workers.service"):
            replies = await asyncio.gather(
                *(
                    bus.request(ops.echo, {"key": "busy", "seq": i, "delay": 0.1}, caller=None)
                    for i in range(3)
                )
            )
        assert sorted(r.value.seq for r in replies) == [0, 1, 2]
        assert any(r.getMessage().startswith("backpressure") for r in caplog.records)

    async def test_an_unreachable_bus_is_unavailable_at_once(self, settings: Any, bus: Bus) -> None:
        """A closed connection: 503 now, not a 504 at the deadline."""
        from hubbub.natsconn import connect_nats

        conn = await connect_nats(settings.nats_url, "hubbub-test-closed")
        closed = Bus(conn, bus.subjects)
        await conn.close()
        start = asyncio.get_running_loop().time()
        with pytest.raises(Unavailable, match="message bus is unreachable"):
            await closed.request(ops.echo, {}, caller=None, timeout=5)
        assert asyncio.get_running_loop().time() - start < 0.5

    async def test_a_reply_after_the_deadline_is_a_timeout(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        """test.slow has a 0.5 s timeout; a 2 s handler → 504 timeout."""
        with pytest.raises(Timeout) as caught:
            await bus.request(ops.slow, {"delay": 2}, caller=None)
        assert caught.value.status == 504

    async def test_a_reply_that_breaks_the_result_schema_is_a_bad_gateway(
        self, worker: RunningWorker, bus: Bus, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A worker answering with the wrong shape → 502, logged with the request id."""
        with caplog.at_level(logging.ERROR), pytest.raises(BadGateway) as caught:
            await bus.request(ops.bad_reply, {}, caller=None, request_id="rid-bad-reply-1")
        assert caught.value.status == 502
        assert caught.value.details == {"request_id": "rid-bad-reply-1"}
        assert any(r.getMessage() == "worker reply failed validation" for r in caplog.records)


class TestSupervision:
    async def test_a_crashing_handler_answers_internal_with_the_request_id(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        """The caller hears `internal` and the request id — never the exception text."""
        with pytest.raises(Internal) as caught:
            await bus.request(
                ops.crash, {"key": "c", "seq": 0}, caller=None, request_id="rid-crash-1"
            )
        assert caught.value.details["request_id"] == "rid-crash-1"
        assert "boom" not in caught.value.message

    async def test_a_transaction_ended_by_a_deadlock_answers_retry_not_internal(
        self, worker: RunningWorker, bus: Bus, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Two calls that lock in opposite orders: PostgreSQL ends one, which rolled back
        and is answered ``unavailable`` (retry) with a warning, the other goes through."""
        ops.holding_first.clear()
        with caplog.at_level(logging.WARNING):
            outcomes = await asyncio.gather(
                *(
                    bus.request(ops.crossing_locks, {"key": f"x{seq}", "seq": seq}, caller=None)
                    for seq in (0, 1)
                ),
                return_exceptions=True,
            )
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(refused) == 1, outcomes
        assert isinstance(refused[0], Unavailable)
        assert refused[0].details["retry_after"] == 1
        assert any("settle a conflict" in r.getMessage() for r in caplog.records)

    async def test_the_actor_keeps_serving_its_key_after_a_crash(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        """Crash, success, crash, success on one key: each gets its own answer."""
        outcomes = []
        for seq in range(4):
            try:
                await bus.request(ops.crash, {"key": "same", "seq": seq}, caller=None)
                outcomes.append("ok")
            except Internal:
                outcomes.append("internal")
        assert outcomes == ["internal", "ok", "internal", "ok"]


class TestOrdering:
    async def test_messages_for_one_key_run_one_at_a_time_in_arrival_order(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        """200 concurrent requests over 4 keys with random handler delays: per key, the
        handlers ran in the order the requests were sent."""
        rng = random.Random(7)
        sent: dict[str, list[int]] = {k: [] for k in "abcd"}
        calls = []
        for seq in range(200):
            key = rng.choice("abcd")
            sent[key].append(seq)
            calls.append(
                bus.request(
                    ops.echo, {"key": key, "seq": seq, "delay": rng.random() / 200}, caller=None
                )
            )
        await asyncio.gather(*calls)
        assert {k: ops.executed[k] for k in "abcd"} == sent

    async def test_different_keys_run_concurrently(self, worker: RunningWorker, bus: Bus) -> None:
        """Ten keys each sleeping 0.3 s finish together, well before the 3 s of one by one."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(
            *(bus.request(ops.echo, {"key": f"k{i}", "delay": 0.3}, caller=None) for i in range(10))
        )
        assert loop.time() - start < 2.5


class TestBackpressure:
    async def test_a_full_mailbox_refuses_and_the_bus_asks_again_running_each_once(
        self, worker: RunningWorker, bus: Bus, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Mailbox of 64 on one key, 100 concurrent slow requests: the worker refuses
        what does not fit (work never started), the bus sends those again within their
        deadline, and every request gets its result, each run exactly once."""
        with caplog.at_level(logging.WARNING, logger="workers.service"):
            results = await asyncio.gather(
                *(
                    bus.request(ops.echo, {"key": "hot", "seq": i, "delay": 0.01}, caller=None)
                    for i in range(100)
                ),
                return_exceptions=True,
            )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert failed == []
        lines = [r for r in caplog.records if r.getMessage().startswith("backpressure")]
        # At least 36 refusals (100 requests, 64 places), logged as one line with the
        # count, not a line each.
        assert lines
        assert len(lines) < 36
        assert "refusal(s) since the last such line" in lines[0].getMessage()
        assert sorted(ops.executed["hot"]) == list(range(100))


class TestEventLoop:
    async def test_tests_run_on_uvloop_like_the_services(self) -> None:
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")


class TestReadOnlyOperations:
    async def test_a_read_only_operation_runs_without_a_transaction(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        """A GET handler's session is on an autocommit connection: each statement is its
        own transaction (two now()s differ), while a POST handler's share one."""
        from sqlalchemy import text

        from handlers.context import Context
        from hubbub.contracts.operations import Http as HttpRoute
        from hubbub.contracts.operations import NoParams

        seen: list[bool] = []
        read = Operation(
            "test.read_tx", NoParams, EchoResult, Access.PUBLIC, HttpRoute("GET", "/t")
        )
        write = Operation(
            "test.write_tx", NoParams, EchoResult, Access.PUBLIC, HttpRoute("POST", "/t")
        )

        async def probe(ctx: Context, params: NoParams) -> EchoResult:
            first = await ctx.session.scalar(text("SELECT now()"))
            await asyncio.sleep(0.01)
            second = await ctx.session.scalar(text("SELECT now()"))
            seen.append(first == second)  # one transaction: the same now()
            return EchoResult(key="k", seq=0, payload={})

        worker.service.registry.handler(read)(probe)
        worker.service.registry.handler(write)(probe)
        await bus.request(read, {}, caller=None)
        await bus.request(write, {}, caller=None)
        assert seen == [False, True]


async def _true(value: bool) -> bool:
    return value
