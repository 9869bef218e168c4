"""Helpers for account tests: a counting argon2 engine, users made directly in the
database, and a small client for the auth API over a hub test client."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import argon2
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts.passwords import PasswordHasher
from handlers.accounts.users import create_user
from handlers.mail import latest_dev_mail
from hubbub.contracts.api.users import Role

PASSWORD = "correct horse battery staple"
SPA = {"X-Requested-With": "hubbub"}


class CountingArgon2(argon2.PasswordHasher):
    """argon2-cffi's hasher, counting every argon2 computation it does."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"memory_cost": 1024, "time_cost": 1, "parallelism": 1, **kwargs})
        self.calls: list[str] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.calls.append("hash")
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.calls.append("verify")
        return super().verify(hash, password)


class BlockingArgon2(CountingArgon2):
    """A counting engine whose every ``verify`` (or, with ``blocks="hash"``, every
    ``hash``) waits until the test sets ``go``; ``entered`` is set once one has begun (in
    a hasher's thread), ``arrived`` counts them."""

    def __init__(self, *, blocks: str = "verify", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blocks = blocks
        self.entered = threading.Event()
        self.go = threading.Event()
        self.arrived: list[str] = []  # appends are atomic: the hasher's threads add here

    def _held(self, call: str) -> None:
        if call == self.blocks:
            self.arrived.append(call)
            self.entered.set()
            self.go.wait(timeout=60)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self._held("hash")
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self._held("verify")
        return super().verify(hash, password)


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(argon2.PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1))


async def make_user(
    db: async_sessionmaker[AsyncSession],
    email: str,
    *,
    password: str = PASSWORD,
    role: Role = Role.MEMBER,
    display_name: str = "Someone",
    verified: bool = True,
) -> str:
    """Create a user straight in the database (its email verified unless told);
    returns the id."""
    hasher = cheap_hasher()
    try:
        async with db() as session:
            user = await create_user(
                session,
                hasher,
                email=email,
                password=password,
                display_name=display_name,
                role=role,
                verified=verified,
            )
            await session.commit()
            return str(user.id)
    finally:
        hasher.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """The auth API through a hub test client."""

    client: TestClient[Any, Any]

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def refresh(self, refresh_token: str) -> Any:
        return await self.client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})

    async def me(self, access_token: str) -> Any:
        return await self.client.get("/api/v1/users/me", headers=bearer(access_token))


async def mailed_token(
    db: async_sessionmaker[AsyncSession], to: str, path: str, *, subject: str = ""
) -> str:
    """The token of the newest link to ``path`` (``/verify-email``, ``/invitations``,
    ``/reset-password``) the dev mail catcher holds for ``to``."""
    async with db() as session:
        mails = await latest_dev_mail(session, limit=200)
    for mail in mails:
        if mail.to_addr == to and subject in mail.subject:
            found = re.search(re.escape(path) + r"#token=([A-Za-z0-9_-]+)", mail.body)
            if found:
                return found[1]
    raise AssertionError(f"no mail to {to} with a {path} link")


async def transactions_reading_users(db: async_sessionmaker[AsyncSession]) -> int:
    """Connections of the test's database left in a transaction after reading ``users``."""
    async with db() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(text("pg_stat_activity"))
                .where(
                    text("datname = current_database()"),
                    text("state LIKE 'idle in transaction%'"),
                    text("query LIKE '%FROM users%'"),
                    text("pid <> pg_backend_pid()"),
                )
            )
            or 0
        )
