"""A whole running system for the fuzzer: services, a migrated database, a worker and a
hub as real processes, and a workspace with a member to fuzz as.

The fuzzer signs in as ``fuzzer``, an *admin* of the workspace (so every workspace
operation runs its real code, while renaming or deleting the workspace is refused with
403 and the workspace survives the run); ``owner`` owns it and invites the fuzzer back
if the fuzzer leaves (it accepts with the token from the dev mail catcher). The
site-admin routes (``/users``, ``/users/{user_id}``) are called as ``site admin``, whose
changes the hooks aim at ``victim`` when they would hit one of the accounts the run
stands on; the publish API with a service key for ``public:*``.
Rate limits are raised so the run measures behaviour, not limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.http import wait_until_200
from tests.support.ports import quiet_port
from tests.support.processes import run_hubbub
from tests.support.services import Databases, running_services

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "fuzzing-is-fun-42"
SECRET = "fuzz-secret-" + "y" * 40


@dataclass(frozen=True)
class System:
    base_url: str  # http://127.0.0.1:PORT
    workspace_id: str
    resource_id: str
    fuzzer_email: str
    fuzzer_id: str
    owner_email: str
    owner_token: str
    owner_id: str = ""
    admin_email: str = ""
    admin_id: str = ""
    victim_id: str = ""
    service_key: str = ""
    database_url: str = ""

    def unpublished_events(self) -> int:
        """Outbox rows the relay has not published (a stuck row is a bug)."""
        return asyncio.run(_unpublished(self.database_url))

    def env(self) -> dict[str, str]:
        """What the schemathesis hooks (tests/fuzz/hooks.py) read."""
        return {
            "HUBBUB_FUZZ_URL": self.base_url,
            "HUBBUB_FUZZ_WORKSPACE": self.workspace_id,
            "HUBBUB_FUZZ_RESOURCE": self.resource_id,
            "HUBBUB_FUZZ_EMAIL": self.fuzzer_email,
            "HUBBUB_FUZZ_USER_ID": self.fuzzer_id,
            "HUBBUB_FUZZ_PASSWORD": PASSWORD,
            "HUBBUB_FUZZ_OWNER_TOKEN": self.owner_token,
            # Accounts the site-admin routes must leave alone (the hooks aim at the victim).
            "HUBBUB_FUZZ_PROTECTED_IDS": ",".join((self.fuzzer_id, self.owner_id, self.admin_id)),
            "HUBBUB_FUZZ_VICTIM_ID": self.victim_id,
            "HUBBUB_FUZZ_ADMIN_EMAIL": self.admin_email,
            "HUBBUB_FUZZ_SERVICE_KEY": self.service_key,
            "HUBBUB_FUZZ_DATABASE_URL": self.database_url,  # the dev mail (invitations)
        }


def _env(urls: dict[str, str], state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    env.update(urls)
    env.update(
        {
            "HUBBUB_ENV": "test",
            "HUBBUB_NAMESPACE": "fuzz" + os.urandom(3).hex(),
            "HUBBUB_SECRET_KEY": SECRET,
            "HUBBUB_STATE_DIR": str(state),
            "HUBBUB_LOG_FORMAT": "text",
            "HUBBUB_LOG_LEVEL": "WARNING",
            "HUBBUB_ACCESS_LOG": "false",
            "HUBBUB_ACCESS_TOKEN_TTL_S": "86400",
            "HUBBUB_ARGON2_MEMORY_KIB": "1024",
            "HUBBUB_ARGON2_TIME_COST": "1",
            "HUBBUB_RATE_LOGIN_IP": "100000/60",
            "HUBBUB_RATE_LOGIN_ACCOUNT": "100000/60",
            "HUBBUB_RATE_LOGIN_ACCOUNT_IP": "100000/60",
            "HUBBUB_RATE_LOGIN_SUCCESS_IP": "100000/60",
            "HUBBUB_RATE_LOGIN_SUCCESS_ACCOUNT": "100000/60",
            "HUBBUB_MAX_SESSIONS_PER_USER": "100000",
            "HUBBUB_RATE_REGISTER_IP": "100000/60",
            "HUBBUB_RATE_REGISTER_ACCOUNT": "100000/60",
            "HUBBUB_RATE_RESET_IP": "100000/60",
            "HUBBUB_RATE_RESET_ACCOUNT": "100000/60",
            "HUBBUB_RATE_RESET_ACCOUNT_IP": "100000/60",
            "HUBBUB_RATE_VERIFY_USER": "100000/60",
            "HUBBUB_RATE_INVITE_USER": "100000/60",
            "HUBBUB_PUBLISH_API_PER_KEY": "100000/60",
            "HUBBUB_PUBLISH_API_BYTES_PER_KEY": "1000000000/60",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = run_hubbub(*args, env=env, stdin=stdin)
    if done.returncode != 0:
        raise RuntimeError(f"hubbub {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def _seed(url: str, env: dict[str, str]) -> System:
    with requests.Session() as http:
        api = url + "/api/v1"

        def signed_in(name: str) -> tuple[str, str, str]:
            """A registered account whose email is verified (the link from the mail)."""
            email = f"{name}-{os.urandom(3).hex()}@example.com"
            http.post(
                api + "/auth/register",
                json={"email": email, "password": PASSWORD, "display_name": name},
            ).raise_for_status()
            token = mailed_token(env["DATABASE_URL"], email, "/verify-email")
            http.post(api + "/auth/verify-email", json={"token": token}).raise_for_status()
            login = http.post(api + "/auth/login", json={"email": email, "password": PASSWORD})
            login.raise_for_status()
            return email, login.json()["access_token"], login.json()["user"]["id"]

        owner_email, owner, owner_id = signed_in("owner")
        fuzzer_email, _, fuzzer_id = signed_in("fuzzer")
        _, _, victim_id = signed_in("victim")
        admin_email = f"admin-{os.urandom(3).hex()}@example.com"
        _cli(env, "user", "create", "--admin", admin_email, "--password-stdin", stdin=PASSWORD)
        login = http.post(api + "/auth/login", json={"email": admin_email, "password": PASSWORD})
        login.raise_for_status()
        admin_id = login.json()["user"]["id"]
        created = _cli(env, "apikey", "create", "fuzzer", "--channel", "public:*")
        service_key = created.rsplit(": ", 1)[-1].strip()
        auth = {"Authorization": f"Bearer {owner}"}
        ws = http.post(api + "/workspaces", json={"name": "Fuzzed"}, headers=auth)
        ws.raise_for_status()
        ws_id = ws.json()["id"]
        http.post(
            api + f"/workspaces/{ws_id}/members",
            json={"email": fuzzer_email, "role": "admin"},
            headers=auth,
        ).raise_for_status()
        join(http, api, env["DATABASE_URL"], fuzzer_email)
        made = http.post(
            api + f"/workspaces/{ws_id}/resources",
            json={"kind": "task", "title": "Seed", "tags": ["seed"], "data": {"n": 1}},
            headers=auth,
        )
        made.raise_for_status()
    return System(
        url,
        ws_id,
        made.json()["id"],
        fuzzer_email,
        fuzzer_id,
        owner_email,
        owner,
        owner_id=owner_id,
        admin_email=admin_email,
        admin_id=admin_id,
        victim_id=victim_id,
        service_key=service_key,
    )


@contextlib.contextmanager
def running_system(state: Path) -> Iterator[System]:
    import migrations

    state.mkdir(parents=True, exist_ok=True)
    with running_services(state / "services") as services:
        databases = Databases(services.database_url)
        database_url = asyncio.run(_create_database(databases))
        urls = {
            "DATABASE_URL": database_url,
            "NATS_URL": services.nats_url,
            "REDIS_URL": services.redis_url,
        }
        env = _env(urls, state)
        migrations.upgrade_sync(database_url)
        port = quiet_port(1)
        hubbub = [sys.executable, "-m", "cli.main"]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for argv in ([*hubbub, "worker"], [*hubbub, "serve", "--port", str(port)]):
                procs.append(subprocess.Popen(argv, cwd=ROOT, env=env))
            url = f"http://127.0.0.1:{port}"
            asyncio.run(wait_until_200(f"{url}/api/v1/ready", processes=procs))
            yield dataclasses.replace(_seed(url, env), database_url=database_url)
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            asyncio.run(databases.drop_all())


def join(http: requests.Session, api: str, database_url: str, email: str) -> None:
    """The account ``email`` (password ``PASSWORD``) accepts its newest invitation."""
    token = mailed_token(database_url, email, "/invitations")
    login = http.post(api + "/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    http.post(
        api + "/invitations/accept",
        json={"token": token},
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    ).raise_for_status()


def mailed_token(database_url: str, to: str, path: str) -> str:
    """The token of the newest ``path`` link the dev mail catcher holds for ``to``."""
    return asyncio.run(_mailed_token(database_url, to, path))


async def _mailed_token(database_url: str, to: str, path: str) -> str:
    import asyncpg

    from tests.support.services import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        bodies = await conn.fetch(
            "SELECT body FROM dev_mail WHERE to_addr = $1 ORDER BY id DESC LIMIT 50", to
        )
    finally:
        await conn.close()
    for row in bodies:
        found = re.search(re.escape(path) + r"#token=([A-Za-z0-9_-]+)", row["body"])
        if found:
            return found[1]
    raise RuntimeError(f"no mail to {to} with a {path} link")


async def _create_database(databases: Databases) -> str:
    url: Any = await databases.create(from_template=False)
    return str(url)


async def _unpublished(database_url: str) -> int:
    import asyncpg

    from tests.support.services import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return count
    finally:
        await conn.close()
