"""Which failures are outages of which dependency, and the tracker that logs each once."""

from __future__ import annotations

import logging

import asyncpg
import nats.errors
import pytest
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import exc as sa_exc

from cli.embedded.process import free_port
from handlers.db import postgres_outage
from hubbub.dependencies import (
    NATS,
    POSTGRES,
    REDIS,
    WAITING_WARN_S,
    Health,
    Outage,
    nats_outage,
    redis_outage,
    unavailable,
)
from tests.support.clock import Clock
from tests.support.waiting import wait_for
from workers.outages import classify


async def _refused_connect() -> ConnectionRefusedError:
    """What asyncpg raises connecting to a port nobody listens on: the bare OSError."""
    try:
        await asyncpg.connect(host="127.0.0.1", port=free_port("127.0.0.1"), timeout=5)
    except ConnectionRefusedError as exc:
        return exc
    raise AssertionError("a free port accepted a connection")


class TestClassifiers:
    def test_redis_connection_errors_and_timeouts_are_redis_outages(self) -> None:
        assert redis_outage(redis.exceptions.ConnectionError("refused")) == Outage(REDIS)
        assert redis_outage(redis.exceptions.TimeoutError()) == Outage(REDIS)
        assert redis_outage(redis.exceptions.BusyLoadingError()) == Outage(REDIS)

    def test_an_exhausted_redis_pool_is_saturation_not_an_outage(self) -> None:
        exc = redis.exceptions.ConnectionError("No connection available.")
        assert redis_outage(exc) == Outage(REDIS, down=False)

    def test_wrong_redis_credentials_are_not_an_outage(self) -> None:
        assert redis_outage(redis.exceptions.AuthenticationError("bad")) is None

    @pytest.mark.parametrize(
        "reply",
        [
            redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
            redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots"),
            redis.exceptions.ResponseError("NOREPLICAS Not enough good replicas to write."),
            redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
            # A command a Lua script ran, on Redis 6 (Redis 7 puts the code first).
            redis.exceptions.ResponseError(
                "Error running script (call to f_4fb3): @user_script:4: @user_script: 4:"
                " -OOM command not allowed when used memory > 'maxmemory'."
            ),
            redis.exceptions.ResponseError(
                "MISCONF Errors writing to the AOF file. script: 4fb3, on @user_script:4."
            ),
        ],
    )
    def test_a_redis_that_takes_no_writes_is_saturated(
        self, reply: redis.exceptions.ResponseError
    ) -> None:
        """It answers (its PING too) but refuses what is written: a 503 and the rate
        limits' fallback, as for a pool with no free connection — not "down", which a
        successful PING would end at once."""
        assert redis_outage(reply) == Outage(REDIS, down=False)

    def test_a_redis_that_answers_nothing_else_for_now_is_down(self) -> None:
        assert redis_outage(redis.exceptions.MasterDownError("Link with MASTER is down")) == (
            Outage(REDIS)
        )
        busy = redis.exceptions.ResponseError("BUSY Redis is busy running a script.")
        assert redis_outage(busy) == Outage(REDIS)

    def test_a_reply_in_a_pipeline_is_told_by_the_reply_not_the_command(self) -> None:
        """redis-py rewrites an error met in a pipeline as "Command # n (<command>) of
        pipeline caused error: (<reply>,)": the reply is what counts, and the command's
        arguments (user data) are never read for a code."""

        def pipelined(command: str, reply: str) -> redis.exceptions.ResponseError:
            return redis.exceptions.ResponseError(
                f"Command # 1 ({command}) of pipeline caused error: {(reply,)!r}"
            )

        refused = pipelined("INCRBY g 1", "NOREPLICAS Not enough good replicas to write.")
        assert redis_outage(refused) == Outage(REDIS, down=False)
        misconf = pipelined("ZADD k 1 s", "MISCONF Redis is configured to save RDB snapshots")
        assert redis_outage(misconf) == Outage(REDIS, down=False)
        wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value"
        for command in (
            "ZADD k 1 x: -MISCONF y",
            "ZADD k 1 a') of pipeline caused error: ('NOREPLICAS x",
        ):
            assert redis_outage(pipelined(command, wrongtype)) is None

    def test_error_replies_of_a_bug_are_not_outages(self) -> None:
        for text in (
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "BUSYKEY Target key name already exists.",
            "Error running script (call to f_1): @user_script:1: Script attempted to access"
            " a non local key",
        ):
            assert redis_outage(redis.exceptions.ResponseError(text)) is None

    async def test_a_socket_error_counts_only_when_redis_py_let_it_through(self) -> None:
        async def reset() -> None:
            raise ConnectionResetError(104, "Connection reset by peer")

        with pytest.raises(ConnectionResetError) as through_redis:
            await Retry(NoBackoff(), 0).call_with_retry(reset, lambda _: None)
        assert redis_outage(through_redis.value) == Outage(REDIS)
        assert redis_outage(ConnectionResetError(104, "elsewhere")) is None

    def test_a_closed_or_reconnecting_nats_connection_is_a_nats_outage(self) -> None:
        assert nats_outage(nats.errors.ConnectionClosedError()) == Outage(NATS)
        assert nats_outage(nats.errors.ConnectionReconnectingError()) == Outage(NATS)
        assert nats_outage(nats.errors.OutboundBufferLimitError()) == Outage(NATS)

    def test_postgres_disconnects_are_postgres_outages_whatever_wraps_them(self) -> None:
        closed = asyncpg.InterfaceError("connection is closed")
        wrapped = sa_exc.InterfaceError("SELECT 1", None, closed)
        assert postgres_outage(wrapped) == Outage(POSTGRES)
        assert postgres_outage(asyncpg.CannotConnectNowError("starting up")) == Outage(POSTGRES)
        assert postgres_outage(asyncpg.AdminShutdownError("shutdown")) == Outage(POSTGRES)
        invalidated = sa_exc.DBAPIError("SELECT 1", None, Exception(), connection_invalidated=True)
        assert postgres_outage(invalidated) == Outage(POSTGRES)

    async def test_a_refused_connect_counts_only_when_the_driver_raised_it(self) -> None:
        assert postgres_outage(await _refused_connect()) == Outage(POSTGRES)
        assert postgres_outage(ConnectionRefusedError(111, "elsewhere")) is None

    def test_an_exhausted_postgres_pool_is_saturation(self) -> None:
        assert postgres_outage(sa_exc.TimeoutError("QueuePool limit")) == Outage(
            POSTGRES, down=False
        )

    def test_bugs_are_not_outages(self) -> None:
        for exc in (RuntimeError("boom"), KeyError("x"), asyncpg.InterfaceError("misuse")):
            assert classify(exc) is None

    def test_the_answer_says_when_to_retry_and_names_no_server(self) -> None:
        error = unavailable(Outage(POSTGRES), "rid-1")
        assert (error.status, error.retry_after, error.details["request_id"]) == (503, 1, "rid-1")
        assert "postgres" not in error.message


class TestHealth:
    def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        clock = Clock(100.0)
        health = Health(clock=clock)
        with caplog.at_level(logging.INFO, logger="hubbub.dependencies"):
            assert health.went_down(POSTGRES, ConnectionRefusedError("refused"))
            for _ in range(5):
                assert not health.went_down(POSTGRES, ConnectionRefusedError("refused"))
            assert health.status()[POSTGRES]["error"] == "ConnectionRefusedError: refused"
            clock.now += 10.25
            assert health.came_back(POSTGRES)
            assert not health.came_back(POSTGRES)
        assert [r.getMessage() for r in caplog.records] == [
            "postgresql went away: ConnectionRefusedError: refused",
            "postgresql came back after 10.2 s",
        ]
        assert not health.down

    def test_a_dependency_never_seen_working_is_waited_for_and_warned_of_if_it_lasts(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        clock = Clock(100.0)
        health = Health(clock=clock)
        with caplog.at_level(logging.INFO, logger="hubbub.dependencies"):
            assert health.waiting_for("workers", "no worker answers system.ready")
            clock.now += WAITING_WARN_S - 0.1
            assert not health.waiting_for("workers", "no worker answers system.ready")
            assert health.is_down("workers")  # /ready and the metrics say so meanwhile
            clock.now += 0.1
            for _ in range(3):
                assert not health.waiting_for("workers", "no worker answers users.me")
            clock.now += 1.5
            assert health.came_back("workers")
        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (logging.INFO, "waiting for workers: no worker answers system.ready"),
            (
                logging.WARNING,
                "still waiting for workers after 30 s: no worker answers system.ready",
            ),
            (logging.INFO, "workers answered after 31.5 s"),
        ]
        assert not health.down

    def test_saturation_is_logged_at_most_every_ten_seconds_with_a_count(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        clock = Clock(100.0)
        health = Health(clock=clock)
        exc = redis.exceptions.ConnectionError("No connection available.")
        with caplog.at_level(logging.WARNING, logger="hubbub.dependencies"):
            for _ in range(3):
                health.failed(Outage(REDIS, down=False), exc)
            clock.now += 10
            health.failed(Outage(REDIS, down=False), exc)
        assert [r.count for r in caplog.records] == [1, 3]  # type: ignore[attr-defined]
        assert not health.down

    async def test_a_probe_brings_a_dependency_back_when_it_answers(self) -> None:
        answers = iter([False, True])

        async def probe() -> None:
            if not next(answers):
                raise ConnectionRefusedError("still down")

        health = Health({REDIS: probe})
        health.went_down(REDIS, "refused")
        health.nudge()
        try:
            await wait_for(lambda: _true(not health.down), timeout=5, what="the probe")
        finally:
            await health.close()

    async def test_closing_stops_the_probes(self) -> None:
        async def never() -> None:
            raise ConnectionRefusedError("down")

        health = Health({REDIS: never})
        health.went_down(REDIS, "refused")
        await health.close()
        assert health.is_down(REDIS)
        assert not health._probing


async def _true(value: bool) -> bool:
    return value
