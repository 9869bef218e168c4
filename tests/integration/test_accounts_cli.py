"""``hubbub user create`` and ``hubbub mail``, run as the operator runs them."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

from aiohttp.test_utils import TestClient

from hubbub.config import Settings
from tests.support.accounts import Api, bearer
from tests.support.processes import run_hubbub


def hubbub(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "HUBBUB_SECRET_KEY": settings.secret_key or "",
        "HUBBUB_STATE_DIR": str(settings.state_dir),
        "HUBBUB_ARGON2_MEMORY_KIB": str(settings.argon2_memory_kib),
    }
    return run_hubbub(*args, env=env, stdin=stdin)


PW = "plum-orbit-kettle-42\n"


class TestUserCreate:
    async def test_the_first_admin_is_made_with_a_generated_password(
        self, settings: Settings, hub_client: TestClient[Any, Any]
    ) -> None:
        done = hubbub(settings, "user", "create", "--admin", "Root@Example.com")
        assert done.returncode == 0, done.stderr
        password = re.search(r"^password: (\S+)$", done.stdout, re.MULTILINE)
        assert password is not None
        assert done.stdout.startswith("created admin root@example.com")
        tokens = await Api(hub_client).login("root@example.com", password[1])
        listed = await hub_client.get("/api/v1/users", headers=bearer(tokens["access_token"]))
        assert listed.status == 200

    async def test_a_password_from_stdin_is_used_and_not_printed(
        self, settings: Settings, hub_client: TestClient[Any, Any]
    ) -> None:
        done = hubbub(
            settings,
            "user",
            "create",
            "ann@example.com",
            "--password-stdin",
            stdin="plum-orbit-kettle-42\n",
        )
        assert (done.returncode, "password:" in done.stdout) == (0, False)
        tokens = await Api(hub_client).login("ann@example.com", "plum-orbit-kettle-42")
        assert tokens["user"]["role"] == "member"

    async def test_a_weak_password_is_refused_with_the_reason(self, settings: Settings) -> None:
        done = hubbub(
            settings,
            "user",
            "create",
            "ann@example.com",
            "--password-stdin",
            stdin="password123\n",
        )
        assert (done.returncode, "most common passwords" in done.stderr) == (1, True)

    async def test_an_existing_email_is_refused(self, settings: Settings) -> None:
        hubbub(settings, "user", "create", "ann@example.com")
        done = hubbub(settings, "user", "create", "ANN@example.com")
        assert (done.returncode, "already exists" in done.stderr) == (1, True)

    async def test_admin_promotes_an_existing_account(
        self, settings: Settings, hub_client: TestClient[Any, Any]
    ) -> None:
        hubbub(settings, "user", "create", "bo@example.com", "--password-stdin", stdin=PW)
        done = hubbub(settings, "user", "create", "--admin", "Bo@example.com")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("promoted bo@example.com to admin")
        assert "password:" not in done.stdout  # the password stays the account's own
        tokens = await Api(hub_client).login("bo@example.com", PW.strip())
        assert tokens["user"]["role"] == "admin"
        again = hubbub(settings, "user", "create", "--admin", "bo@example.com")
        assert (again.returncode, "an admin already" in again.stdout) == (0, True)

    async def test_a_malformed_email_is_refused(self, settings: Settings) -> None:
        done = hubbub(settings, "user", "create", "not-an-email")
        assert done.returncode == 2


class TestMailCommand:
    async def test_an_empty_catcher_says_so(self, settings: Settings) -> None:
        done = hubbub(settings, "mail")
        assert (done.returncode, done.stdout.startswith("no mail caught")) == (0, True)
