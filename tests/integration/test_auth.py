"""Accounts through the real hub and a real worker: register, login, refresh, logout."""

from __future__ import annotations

import asyncio
import unicodedata
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts.models import AuthSession, EmailVerificationToken, RefreshToken, User
from handlers.accounts.passwords import PASSWORD_HASHER, PasswordHasher
from handlers.accounts.sessions import digest
from handlers.mail import DevMail
from handlers.worker_resources import Resources
from hubbub.config import Settings
from tests.support.accounts import (
    PASSWORD,
    Api,
    BlockingArgon2,
    CountingArgon2,
    bearer,
    mailed_token,
    make_user,
    transactions_reading_users,
)
from tests.support.waiting import wait_for

PROBLEM = "application/problem+json"


@pytest.fixture
def api(hub_client: TestClient[Any, Any]) -> Api:
    return Api(hub_client)


class TestRegister:
    async def test_registering_creates_an_unverified_account_and_mails_a_link(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        response = await hub_client.post(
            "/api/v1/auth/register",
            json={"email": "  Ann@Example.COM ", "password": PASSWORD, "display_name": " Ann "},
        )
        assert response.status == 202
        assert await response.json() == {
            "detail": "Check your mail: we sent a link to confirm this address."
        }
        async with db() as session:
            user = (await session.execute(select(User))).scalar_one()
        assert (user.email, user.display_name, user.email_verified_at) == (
            "ann@example.com",
            "Ann",
            None,
        )
        token = await mailed_token(db, "ann@example.com", "/verify-email")
        assert len(token) >= 40

    async def test_the_password_is_stored_as_argon2id(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await hub_client.post(
            "/api/v1/auth/register",
            json={"email": "ann@example.com", "password": PASSWORD, "display_name": "Ann"},
        )
        async with db() as session:
            stored = (await session.execute(select(User.password_hash))).scalar_one()
        assert stored.startswith("$argon2id$")

    async def test_a_taken_email_answers_like_a_new_one_and_mails_its_owner_a_note(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        """No enumeration (issue 13): same status, same body; the difference is only in
        the mailbox, which belongs to the address's owner. The account is unchanged."""
        await make_user(db, "ann@example.com", display_name="Ann")
        answers = []
        for email in ("ANN@example.com", "new@example.com"):
            response = await hub_client.post(
                "/api/v1/auth/register",
                json={"email": email, "password": "another long password", "display_name": "X"},
            )
            answers.append((response.status, await response.json()))
        assert answers[0] == answers[1]
        assert answers[0][0] == 202
        async with db() as session:
            ann = (
                await session.execute(select(User).where(User.email == "ann@example.com"))
            ).scalar_one()
            mails = (
                await session.scalars(select(DevMail).where(DevMail.to_addr == "ann@example.com"))
            ).all()
        assert ann.display_name == "Ann"
        await Api(hub_client).login("ann@example.com")  # the old password still works
        assert [m.subject for m in mails] == ["Your Hubbub account"]
        assert "already has one" in mails[0].body
        assert "token" not in mails[0].body

    async def test_notes_to_a_taken_address_are_capped_quietly(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await make_user(db, "ann@example.com")
        body = {"email": "ann@example.com", "password": "another long password"}
        for _ in range(settings.rate_register_account.count + 2):
            response = await hub_client.post(
                "/api/v1/auth/register", json=body | {"display_name": "X"}
            )
            assert response.status == 202
        async with db() as session:
            mails = (
                await session.scalars(select(DevMail).where(DevMail.to_addr == "ann@example.com"))
            ).all()
        assert len(mails) == settings.rate_register_account.count

    @pytest.mark.parametrize(
        ("password", "message"),
        [
            ("short", "at least 10 characters"),
            ("password123", "most common passwords"),
            ("ann@example.com", "must not be your email"),
        ],
    )
    async def test_the_password_policy_is_a_validation_problem(
        self, hub_client: TestClient[Any, Any], password: str, message: str
    ) -> None:
        response = await hub_client.post(
            "/api/v1/auth/register",
            json={"email": "ann@example.com", "password": password, "display_name": "Ann"},
        )
        body = await response.json()
        assert (response.status, body["code"], body["details"]["errors"][0]["loc"]) == (
            422,
            "validation_failed",
            ["password"],
        )
        assert message in body["detail"]

    async def test_a_malformed_email_names_the_field(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post(
            "/api/v1/auth/register",
            json={"email": "not-an-email", "password": PASSWORD, "display_name": "Ann"},
        )
        body = await response.json()
        assert (response.status, body["details"]["errors"][0]["loc"]) == (422, ["email"])


class TestLogin:
    async def test_login_returns_a_token_pair_and_the_user(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        body = await api.login("ANN@example.com")
        assert (body["token_type"], body["expires_in"], body["user"]["email"]) == (
            "bearer",
            900,
            "ann@example.com",
        )
        assert len(body["refresh_token"]) >= 40

    async def test_the_access_token_opens_users_me(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        user_id = await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        response = await api.me(tokens["access_token"])
        assert (response.status, (await response.json())["id"]) == (200, user_id)

    async def test_a_wrong_password_is_unauthorized(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        response = await hub_client.post(
            "/api/v1/auth/login", json={"email": "ann@example.com", "password": "wrong-password"}
        )
        body = await response.json()
        assert (response.status, response.content_type, body["code"], body["detail"]) == (
            401,
            PROBLEM,
            "unauthorized",
            "wrong email or password",
        )

    async def test_an_unknown_email_gets_the_same_answer(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post(
            "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever!!"}
        )
        body = await response.json()
        assert (response.status, body["detail"]) == (401, "wrong email or password")

    async def test_a_deactivated_account_cannot_log_in(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        async with db() as session, session.begin():
            user = (await session.execute(select(User))).scalar_one()
            user.is_active = False
        response = await hub_client.post(
            "/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
        )
        assert (response.status, (await response.json())["code"]) == (403, "forbidden")

    async def test_login_records_the_session_with_the_callers_ip(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        await api.login("ann@example.com")
        async with db() as session:
            recorded = (await session.execute(select(AuthSession))).scalar_one()
        assert (recorded.created_ip, recorded.revoked_at) == ("127.0.0.1", None)


class CountingHashes:
    """The worker's password hasher counts its argon2 computations (``engine``)."""

    @pytest.fixture
    def engine(self) -> CountingArgon2:
        return CountingArgon2()

    @pytest.fixture
    def worker_resources(self, engine: CountingArgon2) -> Resources:
        return Resources({PASSWORD_HASHER: PasswordHasher(engine)})


class TestOneHashPerLogin(CountingHashes):
    async def test_an_unknown_email_costs_exactly_one_hash(
        self, hub_client: TestClient[Any, Any], engine: CountingArgon2
    ) -> None:
        """As much work as a known email: the response time reveals nothing."""
        response = await hub_client.post(
            "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "guess-1234"}
        )
        assert (response.status, engine.calls) == (401, ["verify"])

    async def test_a_known_email_with_a_wrong_password_costs_one_hash_too(
        self,
        hub_client: TestClient[Any, Any],
        engine: CountingArgon2,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        await make_user(db, "ann@example.com")
        response = await hub_client.post(
            "/api/v1/auth/login", json={"email": "ann@example.com", "password": "guess-1234"}
        )
        assert (response.status, engine.calls) == (401, ["verify"])

    async def test_a_hash_with_old_parameters_is_upgraded_at_login(
        self, api: Api, engine: CountingArgon2, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """make_user hashes with other parameters than the worker's: login rehashes."""
        await make_user(db, "ann@example.com")
        async with db() as session, session.begin():
            user = (await session.execute(select(User))).scalar_one()
            user.password_hash = CountingArgon2(memory_cost=512).hash(PASSWORD)
        await api.login("ann@example.com")
        async with db() as session:
            stored = (await session.execute(select(User.password_hash))).scalar_one()
        assert (engine.calls, "m=1024" in stored) == (["verify", "hash"], True)


class TestSessionCap:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"max_sessions_per_user": 2})

    async def test_a_sign_in_past_the_cap_ends_the_least_recently_used_session(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The laptop signed in first but refreshed since: the phone's session is the one
        used least lately, and it ends like a logout (its access token is denied)."""
        await make_user(db, "ann@example.com")
        laptop = await api.login("ann@example.com")
        phone = await api.login("ann@example.com")
        laptop = await (await api.refresh(laptop["refresh_token"])).json()
        tablet = await api.login("ann@example.com")
        assert [
            (await api.me(tokens["access_token"])).status for tokens in (laptop, phone, tablet)
        ] == [200, 401, 200]
        refused = await api.refresh(phone["refresh_token"])
        assert (refused.status, (await refused.json())["details"]["reason"]) == (401, "revoked")
        async with db() as session:
            reasons = await session.scalars(
                select(AuthSession.revoked_reason).where(AuthSession.revoked_at.is_not(None))
            )
            assert list(reasons) == ["session_limit"]


class TestPasswordsAsTyped(CountingHashes):
    async def test_a_hash_made_before_normalising_signs_in_and_is_upgraded(
        self,
        hub_client: TestClient[Any, Any],
        engine: CountingArgon2,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        """Its password was hashed as typed (a decomposed accent): the login tries the
        normalised form, then the typed one, and stores the normalised form's hash — which
        any way of typing the password then matches."""
        typed = "cafe\u0301 au lait, merci beaucoup"
        await make_user(db, "ann@example.com")
        async with db() as session, session.begin():
            user = (await session.execute(select(User))).scalar_one()
            user.password_hash = CountingArgon2().hash(typed)
        login = {"email": "ann@example.com", "password": typed}
        assert (await hub_client.post("/api/v1/auth/login", json=login)).status == 200
        assert engine.calls == ["verify", "verify", "hash"]
        engine.calls.clear()
        login["password"] = unicodedata.normalize("NFC", typed)
        assert (await hub_client.post("/api/v1/auth/login", json=login)).status == 200
        assert engine.calls == ["verify"]


class TestConcurrentLoginsDuringAnUpgrade:
    @pytest.fixture
    def engine(self) -> BlockingArgon2:
        return BlockingArgon2(memory_cost=2048)  # not make_user's: each login upgrades

    @pytest.fixture
    def worker_resources(self, engine: BlockingArgon2) -> Resources:
        return Resources({PASSWORD_HASHER: PasswordHasher(engine, threads=2)})

    async def test_two_correct_logins_at_once_both_succeed_while_the_hash_is_upgraded(
        self, api: Api, engine: BlockingArgon2, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """Both read the old hash; the first to lock the row stores the upgrade. The
        second finds another hash than it checked — but the same password."""
        await make_user(db, "ann@example.com")
        logins = [asyncio.create_task(api.login("ann@example.com")) for _ in range(2)]
        try:
            await wait_for(lambda: len(engine.arrived) == 2, what="both check the old hash")
        finally:
            engine.go.set()
        first, second = await asyncio.gather(*logins)
        assert first["user"]["email"] == second["user"]["email"] == "ann@example.com"
        async with db() as session:
            stored = await session.scalar(select(User.password_hash))
        assert stored is not None
        assert "m=2048" in stored

    async def test_a_password_changed_while_the_old_one_was_checked_refuses_the_login(
        self,
        hub_client: TestClient[Any, Any],
        engine: BlockingArgon2,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        await make_user(db, "ann@example.com")
        login = asyncio.create_task(
            hub_client.post(
                "/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
            )
        )
        try:
            await wait_for(engine.entered.is_set, what="the old password is checked")
            async with db() as session, session.begin():
                user = (await session.execute(select(User))).scalar_one()
                user.password_hash = CountingArgon2().hash("another long passphrase")
                user.password_changed_at = func.now()
        finally:
            engine.go.set()
        assert (await login).status == 401


class TestPasswordCheckHoldsNoConnection:
    """argon2 takes tens of milliseconds, far longer while its threads are busy: a login
    waiting for it must not hold a database connection or transaction meanwhile."""

    @pytest.fixture
    def engine(self) -> BlockingArgon2:
        return BlockingArgon2()

    @pytest.fixture
    def worker_resources(self, engine: BlockingArgon2) -> Resources:
        return Resources({PASSWORD_HASHER: PasswordHasher(engine, threads=1, waiting=0)})

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"request_timeout_s": 2.0})

    async def test_no_transaction_is_open_while_the_password_is_checked(
        self, api: Api, engine: BlockingArgon2, db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        login = asyncio.create_task(api.login("ann@example.com"))
        try:
            await wait_for(engine.entered.is_set, what="the password check runs")
            assert await transactions_reading_users(db) == 0
        finally:
            engine.go.set()
        assert (await login)["user"]["email"] == "ann@example.com"

    async def test_a_login_past_the_hashers_queue_is_refused_busy(
        self,
        hub_client: TestClient[Any, Any],
        api: Api,
        engine: BlockingArgon2,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        await make_user(db, "ann@example.com")
        first = asyncio.create_task(api.login("ann@example.com"))
        try:
            await wait_for(engine.entered.is_set, what="the first check runs")
            second = await hub_client.post(
                "/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
            )
            body = await second.json()
            assert (second.status, body["details"]["reason"]) == (503, "busy")
        finally:
            engine.go.set()
        assert (await first)["user"]["email"] == "ann@example.com"


class TestRefresh:
    async def test_a_refresh_gives_a_new_pair(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        first = await api.login("ann@example.com")
        response = await api.refresh(first["refresh_token"])
        second = await response.json()
        assert response.status == 200
        assert second["refresh_token"] != first["refresh_token"]
        assert (await api.me(second["access_token"])).status == 200

    async def test_an_unknown_refresh_token_is_unauthorized(self, api: Api) -> None:
        response = await api.refresh("made-up-token")
        assert (response.status, (await response.json())["code"]) == (401, "unauthorized")

    async def test_a_missing_refresh_token_names_the_field(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post("/api/v1/auth/refresh", json={})
        body = await response.json()
        assert (response.status, body["details"]["errors"][0]["loc"]) == (422, ["refresh_token"])

    async def test_a_reused_refresh_token_ends_the_whole_session(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The thief replays the old token: refused, and the owner is logged out too."""
        await make_user(db, "ann@example.com")
        stolen = await api.login("ann@example.com")
        owner = await (await api.refresh(stolen["refresh_token"])).json()
        owner = await (await api.refresh(owner["refresh_token"])).json()

        replay = await api.refresh(stolen["refresh_token"])
        assert (replay.status, (await replay.json())["details"]["reason"]) == (401, "reused")

        owners_refresh = await api.refresh(owner["refresh_token"])
        owners_access = await api.me(owner["access_token"])
        assert (owners_refresh.status, owners_access.status) == (401, 401)

    async def test_the_reuse_revocation_is_recorded_in_the_database(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The revocation commits although the request that caused it failed."""
        await make_user(db, "ann@example.com")
        stolen = await api.login("ann@example.com")
        owner = await (await api.refresh(stolen["refresh_token"])).json()
        await api.refresh(owner["refresh_token"])
        await api.refresh(stolen["refresh_token"])
        async with db() as session:
            recorded = (await session.execute(select(AuthSession))).scalar_one()
        assert recorded.revoked_reason == "refresh_token_reuse"

    async def test_a_reuse_leaves_the_users_other_sessions_alone(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        laptop = await api.login("ann@example.com")
        phone = await api.login("ann@example.com")
        refreshed = await (await api.refresh(phone["refresh_token"])).json()
        await api.refresh(refreshed["refresh_token"])
        replay = await api.refresh(phone["refresh_token"])
        assert replay.status == 401
        assert (await api.me(laptop["access_token"])).status == 200

    async def test_refreshing_never_carries_a_session_past_its_absolute_lifetime(
        self, api: Api, db: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        """Near its end the next token lives only as long as the session; after it, 401."""
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        assert tokens["refresh_expires_in"] == settings.refresh_token_ttl_s
        await _age_sessions(db, settings.session_max_age_s - 60)
        near_end = await (await api.refresh(tokens["refresh_token"])).json()
        assert 0 < near_end["refresh_expires_in"] <= 60
        await _age_sessions(db, 120)
        over = await api.refresh(near_end["refresh_token"])
        assert (over.status, (await over.json())["details"]["reason"]) == (401, "expired")

    async def test_a_refresh_picks_up_a_changed_role(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        async with db() as session, session.begin():
            user = (await session.execute(select(User))).scalar_one()
            user.role = "admin"
        refreshed = await (await api.refresh(tokens["refresh_token"])).json()
        assert refreshed["user"]["role"] == "admin"


async def _age_sessions(db: async_sessionmaker[AsyncSession], seconds: int) -> None:
    """Move every session's start ``seconds`` into the past (its tokens stay valid)."""
    async with db() as session, session.begin():
        await session.execute(
            update(AuthSession).values(
                created_at=AuthSession.created_at - timedelta(seconds=seconds)
            )
        )


class TestLogout:
    async def test_logout_by_refresh_token_ends_that_session(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        response = await hub_client.post(
            "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}
        )
        assert response.status == 204
        assert (
            (await api.me(tokens["access_token"])).status,
            (await api.refresh(tokens["refresh_token"])).status,
        ) == (401, 401)

    async def test_logout_by_access_token_ends_that_session(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        response = await hub_client.post(
            "/api/v1/auth/logout", headers=bearer(tokens["access_token"])
        )
        assert (response.status, (await api.me(tokens["access_token"])).status) == (204, 401)

    async def test_logout_with_an_unknown_refresh_token_ends_the_access_tokens_session(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        response = await hub_client.post(
            "/api/v1/auth/logout",
            json={"refresh_token": "pruned-long-ago"},
            headers=bearer(tokens["access_token"]),
        )
        assert (response.status, (await api.me(tokens["access_token"])).status) == (204, 401)

    async def test_logout_with_nothing_to_name_a_session_is_unauthorized(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post("/api/v1/auth/logout")
        assert response.status == 401

    async def test_logout_leaves_other_sessions_alone(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        laptop = await api.login("ann@example.com")
        phone = await api.login("ann@example.com")
        await hub_client.post("/api/v1/auth/logout", headers=bearer(phone["access_token"]))
        assert (await api.me(laptop["access_token"])).status == 200

    async def test_logout_all_ends_every_session(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        laptop = await api.login("ann@example.com")
        phone = await api.login("ann@example.com")
        response = await hub_client.post(
            "/api/v1/auth/logout-all", headers=bearer(phone["access_token"])
        )
        assert response.status == 204
        assert (
            (await api.me(laptop["access_token"])).status,
            (await api.me(phone["access_token"])).status,
            (await api.refresh(laptop["refresh_token"])).status,
        ) == (401, 401, 401)

    async def test_logout_all_needs_a_signed_in_caller(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post("/api/v1/auth/logout-all")
        assert (response.status, response.headers["WWW-Authenticate"]) == (
            401,
            'Bearer realm="hubbub"',
        )


class TestOverTheBus:
    """What WebSocket RPC will call: the same operations, straight over NATS."""

    def test_every_architecture_method_is_in_the_catalog_with_a_handler(self) -> None:
        from handlers import default_registry
        from hubbub.contracts.api import default_catalog

        catalog = default_catalog()
        default_registry().check_covers(catalog)
        expected = {
            "auth.register",
            "auth.login",
            "auth.refresh",
            "auth.logout",
            "auth.logout_all",
            "auth.reset_request",
            "auth.reset_confirm",
            "auth.verify_email",
            "auth.resend_verification",
            "users.me",
            "users.update_me",
            "users.change_password",
            "users.list",
            "users.update",
        }
        assert expected - {op.name for op in catalog} == set()

    async def test_login_over_the_bus_returns_the_refresh_token_in_the_result(
        self, worker: Any, bus: Any, db: async_sessionmaker[AsyncSession]
    ) -> None:
        from hubbub.contracts.api import auth
        from hubbub.contracts.envelope import Caller

        await make_user(db, "ann@example.com")
        reply = await bus.request(
            auth.login,
            {"email": "ann@example.com", "password": PASSWORD},
            caller=Caller(ip="192.0.2.1"),
        )
        assert (reply.value.user.email, bool(reply.value.refresh_token)) == (
            "ann@example.com",
            True,
        )


class TestConcurrentRefresh:
    async def test_two_refreshes_of_one_token_at_once_leave_one_pair_and_a_trap(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """Serialised by a row lock: the second is taken for a retry of the first (within
        the grace) and spends the pair the first issued — whoever presents that one next
        ends the session. So clients must still keep one refresh in flight (docs/auth.md)."""
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        first, second = await asyncio.gather(
            api.refresh(tokens["refresh_token"]), api.refresh(tokens["refresh_token"])
        )
        assert (first.status, second.status) == (200, 200)
        issued = {(await r.json())["refresh_token"] for r in (first, second)}
        live = await _unused_tokens(db)
        assert (len(issued), len(live), live < {digest(t) for t in issued}) == (2, 1, True)
        spent = next(t for t in issued if digest(t) not in live)
        replay = await api.refresh(spent)
        assert (replay.status, (await replay.json())["details"]["reason"]) == (401, "reused")


async def _unused_tokens(db: async_sessionmaker[AsyncSession]) -> set[bytes]:
    async with db() as session:
        found = await session.scalars(
            select(RefreshToken.token_hash).where(RefreshToken.used_at.is_(None))
        )
        return set(found)


async def _age_refreshes(db: async_sessionmaker[AsyncSession], seconds: int) -> None:
    """Move every rotation ``seconds`` into the past, alike for tokens and sessions."""
    async with db() as session, session.begin():
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.used_at.is_not(None))
            .values(used_at=RefreshToken.used_at - timedelta(seconds=seconds))
        )
        await session.execute(
            update(AuthSession)
            .where(AuthSession.last_refreshed_at.is_not(None))
            .values(last_refreshed_at=AuthSession.last_refreshed_at - timedelta(seconds=seconds))
        )


class TestRefreshRetry:
    """A client whose refresh answer was lost tries again with the token it still holds."""

    async def test_the_spent_token_again_within_the_grace_gets_a_new_pair(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        lost = await api.refresh(tokens["refresh_token"])  # its answer never arrives
        retry = await api.refresh(tokens["refresh_token"])
        again = await api.refresh(tokens["refresh_token"])  # that answer was lost too
        retried = await again.json()
        assert (lost.status, retry.status, again.status) == (200, 200, 200)
        assert (await api.me(retried["access_token"])).status == 200
        assert (await api.refresh(retried["refresh_token"])).status == 200

    async def test_the_pair_the_retry_replaced_is_reuse(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """A thief who raced the owner within the grace is found out at the owner's next
        refresh: both are signed out."""
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        owner = await (await api.refresh(tokens["refresh_token"])).json()
        thief = await (await api.refresh(tokens["refresh_token"])).json()
        replay = await api.refresh(owner["refresh_token"])
        assert (replay.status, (await replay.json())["details"]["reason"]) == (401, "reused")
        assert (await api.me(thief["access_token"])).status == 401

    async def test_once_the_successor_was_used_the_old_token_is_reuse(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        second = await (await api.refresh(tokens["refresh_token"])).json()
        assert (await api.refresh(second["refresh_token"])).status == 200
        replay = await api.refresh(tokens["refresh_token"])
        assert (replay.status, (await replay.json())["details"]["reason"]) == (401, "reused")

    async def test_after_the_grace_the_spent_token_is_reuse(
        self, api: Api, db: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        assert (await api.refresh(tokens["refresh_token"])).status == 200
        await _age_refreshes(db, settings.refresh_retry_grace_s + 1)
        replay = await api.refresh(tokens["refresh_token"])
        assert (replay.status, (await replay.json())["details"]["reason"]) == (401, "reused")


class TestRefreshPastItsDeadline:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"request_timeout_s": 1.0})

    async def test_a_refresh_answered_504_does_not_rotate_and_the_retry_works(
        self, api: Api, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The database is slow (the token's row is locked) past the hub's deadline: the
        worker, once it gets the row, commits nothing, so the client's retry with the
        token it holds is no reuse."""
        await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        presented = tokens["refresh_token"]
        of_token = RefreshToken.token_hash == digest(presented)
        async with db() as holder, holder.begin():
            await holder.execute(select(RefreshToken).where(of_token).with_for_update())
            refresh = asyncio.create_task(api.refresh(presented))
            await wait_for(lambda: _waiting_on_a_lock(db), what="the worker waits for the row")
            assert (await refresh).status == 504
        async with db() as session, session.begin():
            # Locks behind the worker's transaction: read once it has ended.
            token = await session.scalar(select(RefreshToken).where(of_token).with_for_update())
            assert token is not None
            assert token.used_at is None
        retry = await api.refresh(presented)
        assert retry.status == 200
        assert (await api.me((await retry.json())["access_token"])).status == 200


async def _waiting_on_a_lock(db: async_sessionmaker[AsyncSession]) -> bool:
    async with db() as session:
        waiting = await session.scalar(
            select(func.count())
            .select_from(text("pg_stat_activity"))
            .where(
                text("datname = current_database()"),
                text("wait_event_type = 'Lock'"),
                text("pid <> pg_backend_pid()"),
            )
        )
        return bool(waiting)


class TestEmailVerification:
    async def _register(self, client: TestClient[Any, Any], email: str) -> None:
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Ann"},
        )
        assert response.status == 202, await response.text()

    async def test_an_unverified_account_signs_in_and_the_mailed_link_verifies_it_once(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await self._register(hub_client, "ann@example.com")
        tokens = await Api(hub_client).login("ann@example.com")
        assert tokens["user"]["email_verified"] is False
        token = await mailed_token(db, "ann@example.com", "/verify-email")

        verified = await hub_client.post("/api/v1/auth/verify-email", json={"token": token})
        assert verified.status == 204
        me = await (await Api(hub_client).me(tokens["access_token"])).json()
        assert me["email_verified"] is True
        again = await hub_client.post("/api/v1/auth/verify-email", json={"token": token})
        assert (again.status, (await again.json())["code"]) == (400, "bad_request")

    async def test_an_unknown_or_expired_token_is_refused(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await self._register(hub_client, "ann@example.com")
        token = await mailed_token(db, "ann@example.com", "/verify-email")
        async with db() as session:
            await session.execute(
                update(EmailVerificationToken).values(
                    expires_at=EmailVerificationToken.created_at - timedelta(seconds=1)
                )
            )
            await session.commit()
        for presented in (token, "x" * 43):
            response = await hub_client.post("/api/v1/auth/verify-email", json={"token": presented})
            assert response.status == 400
        async with db() as session:
            user = (await session.execute(select(User))).scalar_one()
        assert user.email_verified_at is None

    async def test_resend_mails_a_new_link_and_a_verified_account_is_a_conflict(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await self._register(hub_client, "ann@example.com")
        first = await mailed_token(db, "ann@example.com", "/verify-email")
        access = (await Api(hub_client).login("ann@example.com"))["access_token"]
        resent = await hub_client.post("/api/v1/auth/verify-email/resend", headers=bearer(access))
        assert resent.status == 202
        second = await mailed_token(db, "ann@example.com", "/verify-email")
        assert second != first
        response = await hub_client.post("/api/v1/auth/verify-email", json={"token": second})
        assert response.status == 204
        # Verifying spends every outstanding link.
        response = await hub_client.post("/api/v1/auth/verify-email", json={"token": first})
        assert response.status == 400
        resent = await hub_client.post("/api/v1/auth/verify-email/resend", headers=bearer(access))
        assert (resent.status, (await resent.json())["code"]) == (409, "conflict")

    async def test_an_operator_made_account_is_verified(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "op@example.com")  # like `hubbub user create`
        tokens = await Api(hub_client).login("op@example.com")
        assert tokens["user"]["email_verified"] is True
