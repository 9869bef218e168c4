"""argon2 runs with no transaction slot, database connection or transaction held.

One computation takes tens of milliseconds, far longer while the hasher's threads are
busy. A sign-in, registration, password reset or password change waiting for one must
not keep its worker's other writes from a transaction slot, nor hold a connection or a
transaction (row locks) meanwhile. Each test here runs a worker with one transaction
slot and a hasher that stops inside argon2 until the test lets it go; meanwhile another
write (an outbox row, through the hub) must complete on that worker's one slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
from aiohttp.client import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts.models import PasswordResetToken, User
from handlers.accounts.passwords import PASSWORD_HASHER, PasswordHasher
from handlers.worker_resources import Resources
from hubbub.config import Settings
from tests.support.accounts import (
    PASSWORD,
    BlockingArgon2,
    CountingArgon2,
    bearer,
    mailed_token,
    make_user,
    transactions_reading_users,
)
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for

NEW_PASSWORD = "plum-orbit-kettle-42"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # db_pool_size 3: one transaction slot for requests (workers/execution.py); a write
    # that finds it taken is refused "busy" after db_wait_s.
    return settings.model_copy(
        update={"db_pool_size": 3, "db_wait_s": 0.5, "request_timeout_s": 5.0}
    )


@pytest.fixture
def blocks() -> str:
    return "verify"


@pytest.fixture
def engine(blocks: str) -> BlockingArgon2:
    return BlockingArgon2(blocks=blocks)


@pytest.fixture
def worker_resources(engine: BlockingArgon2) -> Resources:
    return Resources({PASSWORD_HASHER: PasswordHasher(engine, threads=1, waiting=0)})


async def while_argon2_runs(
    hub_client: TestClient[Any, Any],
    engine: BlockingArgon2,
    db: async_sessionmaker[AsyncSession],
    request: Awaitable[ClientResponse],
) -> ClientResponse:
    """Send ``request``; once its argon2 computation has begun (and stays stopped),
    another write must complete on the worker's one slot, and no transaction that read
    ``users`` may be open. Then let argon2 go on; ``request``'s response."""
    pending = asyncio.ensure_future(request)
    try:
        await wait_for(engine.entered.is_set, what="argon2 runs")
        other = await hub_client.post("/api/v1/test/emit", json={"workspace": "w1", "note": "n"})
        assert other.status == 200, await other.text()
        assert await transactions_reading_users(db) == 0
    finally:
        engine.go.set()
    return await pending


async def test_a_sign_in_checks_the_password_holding_no_slot(
    hub_client: TestClient[Any, Any], engine: BlockingArgon2, db: async_sessionmaker[AsyncSession]
) -> None:
    await make_user(db, "ann@example.com")
    login = hub_client.post(
        "/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
    )
    response = await while_argon2_runs(hub_client, engine, db, login)
    assert response.status == 200, await response.text()


async def test_a_wrong_password_is_refused_after_a_check_holding_no_slot(
    hub_client: TestClient[Any, Any], engine: BlockingArgon2, db: async_sessionmaker[AsyncSession]
) -> None:
    await make_user(db, "ann@example.com")
    login = hub_client.post(
        "/api/v1/auth/login", json={"email": "ann@example.com", "password": "guess-12345"}
    )
    response = await while_argon2_runs(hub_client, engine, db, login)
    assert response.status == 401


@pytest.mark.parametrize("blocks", ["hash"])
async def test_a_registration_hashes_the_password_holding_no_slot(
    hub_client: TestClient[Any, Any], engine: BlockingArgon2, db: async_sessionmaker[AsyncSession]
) -> None:
    register = hub_client.post(
        "/api/v1/auth/register",
        json={"email": "bob@example.com", "password": PASSWORD, "display_name": "Bob"},
    )
    response = await while_argon2_runs(hub_client, engine, db, register)
    assert response.status == 202, await response.text()
    async with db() as session:
        assert await session.scalar(select(User.email)) == "bob@example.com"


@pytest.mark.parametrize("blocks", ["hash"])
async def test_a_password_reset_hashes_the_new_password_holding_no_slot(
    hub_client: TestClient[Any, Any], engine: BlockingArgon2, db: async_sessionmaker[AsyncSession]
) -> None:
    await make_user(db, "ann@example.com")
    requested = await hub_client.post(
        "/api/v1/auth/password-reset/request", json={"email": "ann@example.com"}
    )
    assert requested.status == 202
    token = await mailed_token(db, "ann@example.com", "/reset-password")
    confirm = hub_client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    response = await while_argon2_runs(hub_client, engine, db, confirm)
    assert response.status == 204, await response.text()
    signed_in = await hub_client.post(
        "/api/v1/auth/login", json={"email": "ann@example.com", "password": NEW_PASSWORD}
    )
    assert signed_in.status == 200


def password_change(
    hub_client: TestClient[Any, Any], settings: Settings, user_id: str
) -> Awaitable[ClientResponse]:
    """The user's change from PASSWORD to NEW_PASSWORD, not yet awaited."""
    return hub_client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(TestTokens(settings).issue(user_id)),
    )


@pytest.mark.parametrize("blocks", ["verify", "hash"])
async def test_a_password_change_checks_and_hashes_holding_no_slot(
    hub_client: TestClient[Any, Any],
    engine: BlockingArgon2,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    """Both computations: the check of the current password, the new one's hash."""
    user_id = await make_user(db, "ann@example.com")
    change = password_change(hub_client, settings, user_id)
    response = await while_argon2_runs(hub_client, engine, db, change)
    assert response.status == 204, await response.text()
    signed_in = await hub_client.post(
        "/api/v1/auth/login", json={"email": "ann@example.com", "password": NEW_PASSWORD}
    )
    assert signed_in.status == 200


async def while_hashing_change(
    engine: BlockingArgon2,
    db: async_sessionmaker[AsyncSession],
    request: Awaitable[ClientResponse],
    statement: Any,
) -> ClientResponse:
    """Send ``request``; once its argon2 computation has begun (holding no lock, so this
    does not wait for it), commit ``statement``. Then let argon2 go on."""
    pending = asyncio.ensure_future(request)
    try:
        await wait_for(engine.entered.is_set, what="argon2 runs")
        async with db() as session, session.begin():
            await session.execute(statement)
    finally:
        engine.go.set()
    return await pending


@pytest.mark.parametrize("blocks", ["hash"])
async def test_a_reset_link_used_while_the_new_password_is_hashed_is_refused(
    hub_client: TestClient[Any, Any], engine: BlockingArgon2, db: async_sessionmaker[AsyncSession]
) -> None:
    await make_user(db, "ann@example.com")
    await hub_client.post("/api/v1/auth/password-reset/request", json={"email": "ann@example.com"})
    token = await mailed_token(db, "ann@example.com", "/reset-password")
    confirm = hub_client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    spent = update(PasswordResetToken).values(used_at=func.now())
    response = await while_hashing_change(engine, db, confirm, spent)
    assert response.status == 400
    signed_in = await hub_client.post(
        "/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
    )
    assert signed_in.status == 200  # the old password stands


@pytest.mark.parametrize("blocks", ["hash"])
async def test_a_password_changed_while_the_current_one_was_checked_refuses_the_change(
    hub_client: TestClient[Any, Any],
    engine: BlockingArgon2,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    """The current password was checked against a hash that is no longer the user's."""
    user_id = await make_user(db, "ann@example.com")
    change = password_change(hub_client, settings, user_id)
    elsewhere = CountingArgon2().hash("changed elsewhere meanwhile")
    changed = update(User).values(password_hash=elsewhere, password_changed_at=func.now())
    response = await while_hashing_change(engine, db, change, changed)
    body = await response.json()
    assert (response.status, body["detail"]) == (403, "the current password is wrong")
    async with db() as session:
        assert await session.scalar(select(User.password_hash)) == elsewhere
