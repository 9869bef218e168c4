"""The Redis client the running system uses (``hubbub/redisconn.py``), against a real
Redis: a burst waits for the pool, the wait is bounded, a dead pooled connection fails
nothing."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from hubbub.config import Settings
from hubbub.keys import RedisKeys
from hubbub.redisconn import redis_from_settings
from tests.support.waiting import wait_for


async def blocked(redis: Redis) -> bool:
    info = await redis.info("clients")
    return int(info["blocked_clients"]) > 0


class TestPool:
    async def test_a_burst_far_larger_than_the_pool_waits_for_it_instead_of_failing(
        self, settings: Settings, redis: Redis
    ) -> None:
        """500 commands at once through 2 connections: all answered, none refused."""
        key = RedisKeys(settings.namespace).key("burst")
        # A generous pool timeout: the claim is that a burst waits its turn, however
        # slow a loaded machine makes the 250 round trips of each connection.
        client = redis_from_settings(
            settings.model_copy(update={"redis_pool_size": 2, "redis_pool_timeout_s": 60})
        )
        try:
            results = await asyncio.gather(*(client.incr(key) for _ in range(500)))
            assert sorted(results) == list(range(1, 501))
        finally:
            await client.aclose()

    async def test_the_wait_for_a_connection_is_bounded(
        self, settings: Settings, redis: Redis
    ) -> None:
        """Every connection busy past the pool timeout: ConnectionError then (→ 503),
        not a wait as long as the busy command."""
        key = RedisKeys(settings.namespace).key("never")
        client = redis_from_settings(
            settings.model_copy(update={"redis_pool_size": 1, "redis_pool_timeout_s": 0.2})
        )
        try:
            busy = asyncio.ensure_future(client.blpop([key], timeout=60))
            await wait_for(lambda: blocked(redis), what="the only connection busy")
            started = time.monotonic()
            with pytest.raises(RedisConnectionError):
                await client.get(key)
            assert time.monotonic() - started < 30  # the pool's 0.2 s, not the command's 60
            await redis.rpush(key, "done")  # releases the busy connection
            assert await busy is not None
        finally:
            await client.aclose()


class TestDeadConnections:
    async def test_a_pooled_connection_that_died_is_replaced_without_failing_the_command(
        self, settings: Settings, redis: Redis
    ) -> None:
        """What a Redis restart leaves in the pool: the next command still succeeds."""
        client = redis_from_settings(settings)
        try:
            own_id = await client.client_id()
            await redis.client_kill_filter(_id=str(own_id))
            assert await client.ping() is True
            assert await client.client_id() != own_id
        finally:
            await client.aclose()
