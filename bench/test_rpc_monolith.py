"""``bench rpc``'s baseline answers ``users.me`` as Hubbub does (not timed): the same
client (``HubbubClient``) connects with an access JWT and gets the user's public view,
read from PostgreSQL; HTTP ``GET /users/me`` gives the same; a bad token is refused.

``python -m pytest bench/test_rpc_monolith.py``.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import migrations
from bench import monolith
from cli.admin.accounts import create_user
from cli.embedded import EmbeddedPostgres
from handlers.accounts.users import by_email
from handlers.db import create_engine, session_factory
from hubbub.client import HubbubClient
from hubbub.client.client import RemoteError
from hubbub.config import Settings
from hubbub.tokens import AccessTokens

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-monolith-test-" + "x" * 40


@pytest.fixture
async def arranged(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    postgres = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    url = postgres.start()
    try:
        await migrations.upgrade(url)
        settings = Settings(_env_file=None, database_url=url, secret_key=SECRET)
        email = "monolith@example.com"
        password = "a benchmark password 1"  # noqa: S105 - a throwaway test account
        assert await create_user(settings, email, password=password, out=io.StringIO()) == 0
        engine = create_engine(settings.database_url or "", pool_size=1, max_overflow=0)
        async with session_factory(engine)() as session:
            user = await by_email(session, email)
        await engine.dispose()
        assert user is not None
        tokens = AccessTokens.from_settings(settings, signing=True)
        token = tokens.issue(user_id=str(user.id), role="member", session_id="s1").token
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "HUBBUB_SECRET_KEY": SECRET,
            "HUBBUB_STATE_DIR": str(tmp_path / "state"),
            "PYTHONPATH": str(ROOT),
        }
        proc, port = await monolith.start(env, str(ROOT))
        try:
            yield {"port": port, "token": token, "user_id": str(user.id), "email": email}
        finally:
            await monolith.stop(proc)
    finally:
        postgres.stop()


async def test_users_me_over_ws_rpc(arranged: dict[str, Any]) -> None:
    url = f"ws://127.0.0.1:{arranged['port']}/ws"
    async with HubbubClient(
        url, arranged["token"], rpc_timeout=10, connect_in_upgrade=False
    ) as client:
        me = await client.rpc("users.me")
        assert me["id"] == arranged["user_id"]
        assert me["email"] == arranged["email"]
        assert me["is_active"] is True
        with pytest.raises(RemoteError, match="no such method"):
            await client.rpc("users.nothing")


async def test_users_me_over_http(arranged: dict[str, Any]) -> None:
    base = f"http://127.0.0.1:{arranged['port']}"
    async with aiohttp.ClientSession(base_url=base) as http:
        auth = {"Authorization": f"Bearer {arranged['token']}"}
        async with http.get("/users/me", headers=auth) as r:
            assert r.status == 200
            me = await r.json()
        assert (me["id"], me["email"]) == (arranged["user_id"], arranged["email"])
        async with http.get("/users/me", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401
