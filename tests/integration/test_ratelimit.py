"""Rate limits in Redis: the helper, and the limits on login, register and reset."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually, wait_for


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
        assert 0 < await redis.pttl(limit.key) <= 1000  # the window is the counter's life

        async def window_closed() -> bool:
            return not await redis.exists(limit.key)

        await wait_for(window_closed, timeout=10, what="the 1 s window to close")
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


PROXIED = {"trusted_proxies": ["127.0.0.1/32", "::1/128"]}


async def login(
    client: TestClient[Any, Any], email: str, password: str, ip: str | None = None
) -> Any:
    """A login as seen from ``ip`` (the test hub trusts its loopback peer as a proxy)."""
    headers = {"X-Forwarded-For": ip} if ip else {}
    return await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}, headers=headers
    )


async def reset(client: TestClient[Any, Any], email: str, ip: str) -> Any:
    return await client.post(
        "/api/v1/auth/password-reset/request",
        json={"email": email},
        headers={"X-Forwarded-For": ip},
    )


class TestLoginLimit:
    async def test_failures_past_the_account_and_ip_limit_are_429_with_retry_after(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """Brute force from one place: past rate_login_account_ip failures, even the
        right password waits."""
        await make_user(db, "ann@example.com")
        limit = settings.rate_login_account_ip.count
        statuses = [
            (await login(hub_client, "ann@example.com", "guess-123!")).status for _ in range(limit)
        ]
        refused = await login(hub_client, "ann@example.com", PASSWORD)
        body = await refused.json()
        assert statuses == [401] * limit
        assert (refused.status, refused.content_type, body["code"]) == (
            429,
            "application/problem+json",
            "rate_limited",
        )
        window = settings.rate_login_account_ip.per_s
        assert 1 <= int(refused.headers["Retry-After"]) <= window
        assert body["details"]["retry_after"] == int(refused.headers["Retry-After"])

    async def test_successful_sign_ins_do_not_count_as_failures(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """Successes are taken back from the failure limits: many people behind one
        address sign in all day (their own, looser limits: TestSuccessfulSignIns)."""
        await make_user(db, "ann@example.com")
        for _ in range(settings.rate_login_ip.count + 2):
            assert (await login(hub_client, "ann@example.com", PASSWORD)).status == 200

    async def test_one_ip_guessing_across_accounts_meets_the_ip_limit(
        self, hub_client: TestClient[Any, Any], settings: Settings
    ) -> None:
        statuses = [
            (await login(hub_client, f"u{n}@example.com", "guess-123!")).status
            for n in range(settings.rate_login_ip.count + 1)
        ]
        assert statuses == [401] * settings.rate_login_ip.count + [429]


class TestSuccessfulSignIns:
    """Knowing one password must not buy unlimited sign-ins (each an argon2 computation
    and a session): successes count against looser limits, per IP and per account."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                **PROXIED,
                "rate_login_success_ip": Rate(3, 60),
                "rate_login_success_account": Rate(2, 3600),
            }
        )

    async def test_past_the_accounts_limit_a_correct_password_waits(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        statuses = [
            (await login(hub_client, "ann@example.com", PASSWORD, f"198.51.100.{n}")).status
            for n in range(3)
        ]
        assert statuses == [200, 200, 429]

    async def test_past_the_ips_limit_a_correct_password_waits(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        for name in ("ann", "bob", "cat", "dan"):
            await make_user(db, f"{name}@example.com")
        statuses = [
            (await login(hub_client, f"{name}@example.com", PASSWORD, "203.0.113.9")).status
            for name in ("ann", "bob", "cat", "dan")
        ]
        assert statuses == [200, 200, 200, 429]

    async def test_failures_do_not_use_up_the_success_limits(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        """A stranger's guesses leave the owner's successes alone."""
        await make_user(db, "ann@example.com")
        for _ in range(3):
            await login(hub_client, "ann@example.com", "guess-123!", "203.0.113.5")
        owner = await login(hub_client, "ann@example.com", PASSWORD, "198.51.100.7")
        assert owner.status == 200


class TestLockOut:
    """Issue 13: strangers must not be able to lock an account out — failures count per
    (account, IP) and per IP, and the per-account budget spares IPs known to the account."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={**PROXIED, "rate_login_account": Rate(8, 3600)})

    async def test_a_stranger_guessing_does_not_lock_the_owner_out(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await make_user(db, "ann@example.com")
        stranger = [
            (await login(hub_client, "ann@example.com", "guess-123!", "203.0.113.5")).status
            for _ in range(12)
        ]
        assert stranger[-1] == 429  # the stranger is stopped (past any per-account limit)...
        owner = await login(hub_client, "ann@example.com", PASSWORD, "198.51.100.7")
        assert owner.status == 200  # ...the owner, elsewhere, is not

    async def test_guesses_from_many_ips_meet_the_account_limit_except_from_known_ips(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        """A botnet gets rate_login_account guesses an hour, in all; the owner signing in
        from an IP they used before is not refused."""
        await make_user(db, "ann@example.com")
        assert (await login(hub_client, "ann@example.com", PASSWORD, "198.51.100.7")).status == 200
        statuses = [
            (await login(hub_client, "ann@example.com", "guess-123!", f"203.0.113.{n}")).status
            for n in range(1, 10)
        ]
        assert statuses == [401] * 8 + [429]
        new_place = await login(hub_client, "ann@example.com", PASSWORD, "192.0.2.77")
        assert new_place.status == 429
        home = await login(hub_client, "ann@example.com", PASSWORD, "198.51.100.7")
        assert home.status == 200

    async def test_an_ipv6_client_is_limited_by_its_64(
        self, hub_client: TestClient[Any, Any], settings: Settings
    ) -> None:
        """A host usually has a whole /64: new addresses in it share one budget."""
        limit = settings.rate_login_ip.count
        statuses = [
            (
                await login(hub_client, f"u{n}@example.com", "guess-123!", f"2001:db8:1:2::{n:x}")
            ).status
            for n in range(1, limit + 2)
        ]
        assert statuses == [401] * limit + [429]
        other_64 = await login(hub_client, "v@example.com", "guess-123!", "2001:db8:1:3::1")
        assert other_64.status == 401

    async def test_a_stranger_asking_for_resets_does_not_block_the_owners_request(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await make_user(db, "ann@example.com")
        limit = settings.rate_reset_account_ip.count
        statuses = [
            (await reset(hub_client, "ann@example.com", "203.0.113.5")).status
            for _ in range(limit + 1)
        ]
        assert statuses == [202] * limit + [429]
        assert (await reset(hub_client, "ann@example.com", "198.51.100.7")).status == 202


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
        assert statuses == [202, 202, 429]


class TestIpKey:
    @pytest.mark.parametrize(
        ("ip", "key"),
        [
            ("192.0.2.1", "192.0.2.1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ],
    )
    def test_ipv4_as_is_ipv6_by_its_64(self, ip: str, key: str) -> None:
        assert ratelimit.ip_key(ip) == key


class TestForgive:
    async def test_a_forgiven_attempt_gives_its_place_back(
        self, redis: Redis, keys: RedisKeys
    ) -> None:
        limit = Limit(keys.key("rl", "a"), Rate(1, 60))
        await ratelimit.hit(redis, [limit])
        await ratelimit.forgive(redis, [limit])
        await ratelimit.hit(redis, [limit])
        with pytest.raises(RateLimited):
            await ratelimit.hit(redis, [limit])

    async def test_within_counts_without_raising(self, redis: Redis, keys: RedisKeys) -> None:
        limit = Limit(keys.key("rl", "a"), Rate(2, 60))
        assert [await ratelimit.within(redis, [limit]) for _ in range(3)] == [True, True, False]


class TestOutagesSpendNoBudget:
    """An attempt answered 503 because PostgreSQL is away did nothing: it is taken back,
    so the owner is not refused once the outage is over (only failures stay counted)."""

    @pytest.fixture
    async def postgres_link(self, database_url: str) -> AsyncIterator[TcpProxy]:
        proxy = TcpProxy.to_url(database_url.replace("postgresql+asyncpg", "postgresql", 1))
        await proxy.start()
        yield proxy
        await proxy.stop()

    @pytest.fixture
    def settings(self, settings: Settings, postgres_link: TcpProxy) -> Settings:
        assert settings.database_url is not None
        return settings.model_copy(
            update={
                "database_url": postgres_link.in_place_of(settings.database_url),
                "rate_login_account_ip": Rate(2, 300),
                "rate_reset_account_ip": Rate(2, 3600),
                "rate_register_ip": Rate(2, 3600),
            }
        )

    async def test_sign_in_reset_and_register_work_after_an_outage(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        postgres_link: TcpProxy,
    ) -> None:
        await make_user(db, "ann@example.com")
        calls = {
            "login": ("/api/v1/auth/login", {"email": "ann@example.com", "password": PASSWORD}),
            "reset": ("/api/v1/auth/password-reset/request", {"email": "ann@example.com"}),
            "register": (
                "/api/v1/auth/register",
                {"email": "bob@example.com", "password": PASSWORD, "display_name": "Bob"},
            ),
        }
        await postgres_link.cut()
        while_down = [
            (await hub_client.post(path, json=body)).status
            for path, body in calls.values()
            for _ in range(3)
        ]
        assert while_down == [503] * 9
        await postgres_link.restore()

        async def answered() -> dict[str, int]:
            statuses = {
                name: (await hub_client.post(path, json=body)).status
                for name, (path, body) in calls.items()
            }
            assert 503 not in statuses.values(), statuses  # a connection from before the cut
            return statuses

        assert await eventually(answered, timeout=15) == {
            "login": 200,
            "reset": 202,
            "register": 202,
        }
