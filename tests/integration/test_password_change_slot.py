"""A password change counts its attempt (per account) before it checks the current
password outside its transaction (``Context.outside_transaction``): coming back to take
a transaction slot again must not make it count twice. It waits for the slot however
busy the worker is (refused "busy", the hub would send it again: checked and counted
again, and answered 429 where the first count was within the limit), and an attempt
refused for a reason of ours — its deadline passed, the hasher full — is taken back."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts.models import User
from handlers.accounts.passwords import PASSWORD_HASHER, PasswordHasher
from handlers.accounts.profile import change_password
from handlers.context import Context
from handlers.ratelimit import account_digest
from handlers.worker_resources import Resources
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.api import users as api
from hubbub.contracts.api.users import ChangePasswordParams
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Timeout, Unavailable
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from tests.support import ops
from tests.support.accounts import PASSWORD, BlockingArgon2, bearer, make_user
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for
from workers.execution import TRANSACTION_SLOTS, WAITING_PER_SLOT, run_handler

NEW_PASSWORD = "plum-orbit-kettle-42"
EMAIL = "ann@example.com"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # One transaction slot for requests; writes wait for it far longer than a test runs.
    return settings.model_copy(
        update={"db_pool_size": 3, "db_wait_s": 20.0, "request_timeout_s": 25.0}
    )


@pytest.fixture
def engine() -> BlockingArgon2:
    return BlockingArgon2(blocks="hash")


@pytest.fixture
def worker_resources(engine: BlockingArgon2) -> Resources:
    return Resources({PASSWORD_HASHER: PasswordHasher(engine, threads=1, waiting=0)})


async def counted(redis: Redis, settings: Settings) -> int:
    """The attempts counted against the account's "password" limit."""
    key = RedisKeys(settings.namespace).key("rl", "password", "acct", account_digest(EMAIL))
    return int(await redis.get(key) or 0)


async def password_hash(db: async_sessionmaker[AsyncSession]) -> str:
    async with db() as session:
        found = await session.scalar(select(User.password_hash).where(User.email == EMAIL))
    assert found is not None
    return found


async def test_coming_back_to_a_full_queue_of_writes_it_waits_and_counts_once(
    hub_client: TestClient[Any, Any],
    engine: BlockingArgon2,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Redis,
    bus: Bus,
    worker_resources: Resources,
) -> None:
    slots = worker_resources.get(TRANSACTION_SLOTS, settings)
    user_id = await make_user(db, EMAIL)
    change = asyncio.ensure_future(
        hub_client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(TestTokens(settings).issue(user_id)),
        )
    )
    writer = Caller(kind=CallerKind.USER, user_id=str(uuid.uuid4()), role="member")
    writes: list[asyncio.Future[Any]] = []
    try:
        await wait_for(engine.entered.is_set, what="the new password hashed outside")
        # Meanwhile other writes take the worker's one slot and fill the queue for it.
        writes = [
            asyncio.ensure_future(
                bus.request(
                    ops.held_emit,
                    {"workspace": f"w{n}", "note": f"n{n}"},
                    caller=writer,
                    idempotency_key=f"k{n}",
                    timeout=20.0,
                )
            )
            for n in range(WAITING_PER_SLOT + 1)
        ]
        await wait_for(
            lambda: len(ops.hold.arrived) == 1 and slots.waiting == WAITING_PER_SLOT,
            what="one write holding the slot, the queue full",
        )
        engine.go.set()
        await wait_for(
            lambda: slots.waiting == WAITING_PER_SLOT + 1 or change.done(),
            what="the change waiting to take its slot again",
        )
        assert not change.done()
    finally:
        engine.go.set()
        ops.hold.open()
    response = await change
    await asyncio.gather(*writes)
    assert response.status == 204, await response.text()
    assert await counted(redis, settings) == 1
    assert engine.arrived == ["hash"]  # the new password hashed once: never sent again
    assert engine.verify(await password_hash(db), NEW_PASSWORD)


class Direct:
    """Contexts for the change-password handler run in this process (no hub, no
    worker), so that a test decides when the request's deadline passes."""

    def __init__(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession], user_id: str
    ) -> None:
        self.settings, self.redis, self.db = settings, redis, db
        self.caller = Caller(kind=CallerKind.USER, user_id=user_id, role="member")

    def ctx(self, resources: Resources, deadline: float) -> Context:
        return Context(
            caller=self.caller,
            request_id=uuid.uuid4().hex,
            settings=self.settings,
            redis=self.redis,
            keys=RedisKeys(self.settings.namespace),
            subjects=Subjects(self.settings.namespace),
            sessions=self.db,
            deadline=deadline,
            resources=resources,
        )

    async def change(self, ctx: Context) -> bytes:
        params = ChangePasswordParams(current_password=PASSWORD, new_password=NEW_PASSWORD)
        return await run_handler(api.change_password, change_password, ctx, params)


async def test_its_deadline_passing_while_it_hashes_changes_nothing_and_counts_nothing(
    engine: BlockingArgon2,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Redis,
) -> None:
    """Its caller has been answered ``timeout``: the slot it takes again is free, yet
    the change is not made after that answer, and the attempt is taken back."""
    direct = Direct(settings, redis, db, await make_user(db, EMAIL))
    before = await password_hash(db)
    hasher = PasswordHasher(engine, threads=1, waiting=0)
    try:
        ctx = direct.ctx(Resources({PASSWORD_HASHER: hasher}), deadline=time.time() + 30)
        change = asyncio.ensure_future(direct.change(ctx))
        await wait_for(engine.entered.is_set, what="the new password hashed outside")
        assert await counted(redis, settings) == 1
        ctx.deadline = time.time() - 1  # it passes while argon2 runs
        engine.go.set()
        with pytest.raises(Timeout):
            await change
    finally:
        engine.go.set()
        hasher.close()
    assert await password_hash(db) == before
    assert await counted(redis, settings) == 0


async def test_refused_by_a_full_hasher_it_counts_nothing(
    engine: BlockingArgon2,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Redis,
) -> None:
    """Refused "busy" (the hub sends it to another worker, where it is counted)."""
    direct = Direct(settings, redis, db, await make_user(db, EMAIL))
    hasher = PasswordHasher(engine, threads=1, waiting=0)
    try:
        other = asyncio.ensure_future(hasher.hash("someone else's password"))
        await wait_for(engine.entered.is_set, what="the hasher's one thread busy")
        ctx = direct.ctx(Resources({PASSWORD_HASHER: hasher}), deadline=time.time() + 30)
        with pytest.raises(Unavailable) as refused:
            await direct.change(ctx)
        assert refused.value.details["reason"] == "busy"
        engine.go.set()
        await other
    finally:
        engine.go.set()
        hasher.close()
    assert await counted(redis, settings) == 0
