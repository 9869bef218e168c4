"""Rate limits in Redis: the helper, and the limits on login, register and reset."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import ratelimit
from handlers.ratelimit import Limit
from hubbub.config import Rate, Settings
from hubbub.contracts.errors import RateLimited
from hubbub.keys import RedisKeys
from tests.support.accounts import PASSWORD, make_user


@pytest.fixture
def keys(settings: Settings) -> RedisKeys:
    return RedisKeys(settings.namespace)


class TestHelper:
    async def test_attempts_within_the_limit_pass(self, redis: Redis, keys: RedisKeys) -> None:
        for _ in range(3):
            await ratelimit.hit(redis, [Limit(keys.key("rl", "a"), Rate(3, 60))])

    async def test_the_attempt_past_the_limit_is_refused_with_the_wait(
        self, redis: Redis, keys: RedisKeys
    ) -> None:
        limit = Limit(keys.key("rl", "a"), Rate(2, 60))
        await ratelimit.hit(redis, [limit])
        await ratelimit.hit(redis, [limit])
        with pytest.raises(RateLimited) as caught:
            await ratelimit.hit(redis, [limit])
        assert 55 <= caught.value.retry_after <= 60

    async def test_a_new_window_opens_once_the_old_one_expires(
        self, redis: Redis, keys: RedisKeys
    ) -> None:
        limit = Limit(keys.key("rl", "a"), Rate(1, 1))
        await ratelimit.hit(redis, [limit])
        with pytest.raises(RateLimited):
            await ratelimit.hit(redis, [limit])
        await asyncio.sleep(1.1)
        await ratelimit.hit(redis, [limit])

    async def test_any_exceeded_limit_refuses(self, redis: Redis, keys: RedisKeys) -> None:
        """Per-IP and per-account together: the stricter one decides."""
        loose = Limit(keys.key("rl", "ip"), Rate(100, 60))
        strict = Limit(keys.key("rl", "acct"), Rate(1, 60))
        await ratelimit.hit(redis, [loose, strict])
        with pytest.raises(RateLimited):
            await ratelimit.hit(redis, [loose, strict])

    async def test_a_counter_always_has_an_expiry(self, redis: Redis, keys: RedisKeys) -> None:
        limit = Limit(keys.key("rl", "a"), Rate(5, 60))
        await ratelimit.hit(redis, [limit])
        assert 0 < await redis.pttl(limit.key) <= 60_000


class TestLoginLimit:
    async def test_the_eleventh_login_attempt_in_a_minute_is_429_with_retry_after(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        statuses = []
        for _ in range(10):
            response = await hub_client.post(
                "/api/v1/auth/login", json={"email": "ann@example.com", "password": "guess-123!"}
            )
            statuses.append(response.status)
        eleventh = await hub_client.post(
            "/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
        )
        body = await eleventh.json()
        assert statuses == [401] * 10
        assert (eleventh.status, eleventh.content_type, body["code"]) == (
            429,
            "application/problem+json",
            "rate_limited",
        )
        assert 1 <= int(eleventh.headers["Retry-After"]) <= 60
        assert body["details"]["retry_after"] == int(eleventh.headers["Retry-After"])

    async def test_the_account_limit_holds_across_ips(
        self, hub_client: TestClient[Any, Any], redis: Redis, settings: Settings
    ) -> None:
        """An attacker rotating IPs still meets the per-account limit."""
        keys = RedisKeys(settings.namespace)
        for _ in range(10):
            await hub_client.post(
                "/api/v1/auth/login", json={"email": "ann@example.com", "password": "guess-123!"}
            )
            await redis.delete(keys.key("rl", "login", "ip", "127.0.0.1"))  # a "new" IP
        response = await hub_client.post(
            "/api/v1/auth/login", json={"email": "ann@example.com", "password": "guess-123!"}
        )
        assert response.status == 429

    async def test_another_account_from_another_ip_is_not_limited(
        self, hub_client: TestClient[Any, Any], redis: Redis, settings: Settings
    ) -> None:
        keys = RedisKeys(settings.namespace)
        for _ in range(11):
            await hub_client.post(
                "/api/v1/auth/login", json={"email": "ann@example.com", "password": "guess-123!"}
            )
        await redis.delete(keys.key("rl", "login", "ip", "127.0.0.1"))
        response = await hub_client.post(
            "/api/v1/auth/login", json={"email": "bob@example.com", "password": "guess-123!"}
        )
        assert response.status == 401


class TestRegisterLimit:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"rate_register_ip": Rate(2, 3600)})

    async def test_registrations_per_ip_are_limited(self, hub_client: TestClient[Any, Any]) -> None:
        statuses = []
        for n in range(3):
            response = await hub_client.post(
                "/api/v1/auth/register",
                json={"email": f"u{n}@example.com", "password": PASSWORD, "display_name": "U"},
            )
            statuses.append(response.status)
        assert statuses == [201, 201, 429]
