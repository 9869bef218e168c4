"""A whole Hubbub system the chaos suite may break: its own embedded PostgreSQL, NATS and
Redis (on free ports, data in a temporary folder, so it can stop and start them) and
``hubbub up --workers 2 --hubs 2 --no-frontend`` on them, with two users signed in.

Processes are only ever signalled by the ids this module started, or by the ids its own
``hubbub up`` records in its own ``runtime.json`` (checked to be that process's children).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

from cli.embedded import EmbeddedNats, EmbeddedPostgres, EmbeddedRedis
from cli.embedded.process import die_with_parent
from tests.support.http import answers_200
from tests.support.ports import quiet_port

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PASSWORD = "chaos-" + secrets.token_urlsafe(12)


@dataclass(frozen=True)
class LogMark:
    """Where the system's logs ended at one moment: ``up.log``'s size, and how many extra
    hubs (each with a log of its own) had been started."""

    up_log: int
    extra_hubs: int


@dataclass(frozen=True)
class User:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class System:
    """Start with ``await start()``, end with ``await stop()`` (idempotent)."""

    def __init__(self, workers: int = 2, hubs: int = 2) -> None:
        self.workers = workers
        self.hubs = hubs
        self.base = Path(tempfile.mkdtemp(prefix="hubbub-chaos-"))
        self.state_dir = self.base / "state"
        self.postgres = EmbeddedPostgres(self.base / "postgres", durable=False)
        self.nats = EmbeddedNats(self.base / "nats")
        self.redis = EmbeddedRedis(self.base / "redis")
        self.secret = secrets.token_urlsafe(48)
        self.up: subprocess.Popen[bytes] | None = None
        self.up_starts = 0
        self.port = 0
        self.owner: User | None = None
        self.member: User | None = None
        self.extra: list[subprocess.Popen[bytes]] = []  # hubs started beside hubbub up
        self.extra_logs: list[Path] = []  # what each of them wrote, in the order started
        self._env: dict[str, str] = {}

    # --- addresses ------------------------------------------------------------------------

    @property
    def hub_urls(self) -> list[str]:
        return [f"http://{HOST}:{self.port + i}" for i in range(self.hubs)]

    @property
    def ws_urls(self) -> list[str]:
        return [f"ws://{HOST}:{self.port + i}/ws" for i in range(self.hubs)]

    @property
    def log_path(self) -> Path:
        return self.base / "up.log"

    # --- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        _raise_open_files_limit()
        urls = {
            "DATABASE_URL": await asyncio.to_thread(self.postgres.start),
            "NATS_URL": await asyncio.to_thread(self.nats.start),
            "REDIS_URL": await asyncio.to_thread(self.redis.start),
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
        env.update(urls)
        env.update(
            {
                "HUBBUB_STATE_DIR": str(self.state_dir),
                "HUBBUB_SECRET_KEY": self.secret,
                "HUBBUB_NAMESPACE": "chaos",
                "HUBBUB_ACCESS_LOG": "false",
                "HUBBUB_ACCESS_TOKEN_TTL_S": "86400",
                # One client address signs in and connects for everyone.
                "HUBBUB_RATE_LOGIN_IP": "10000/60",
                "HUBBUB_RATE_LOGIN_ACCOUNT": "10000/60",
                "HUBBUB_RATE_LOGIN_SUCCESS_IP": "10000/60",
                "HUBBUB_RATE_LOGIN_SUCCESS_ACCOUNT": "10000/60",
                "HUBBUB_RATE_INVITE_USER": "10000/3600",
                "HUBBUB_WS_CONNECT_TIMEOUT_S": "30",
                "HUBBUB_MAX_SOCKETS_PER_USER": "100000",  # the storm is one user's sockets
                "PYTHONPATH": str(ROOT),
            }
        )
        self._env = env
        await self.ensure_up()
        self.owner = await self._user("owner")
        self.member = await self._user("member")

    async def stop(self, *, keep: bool = False) -> None:
        """Stop everything; remove the temporary folder unless ``keep`` (its logs)."""
        for proc in self.extra:
            _terminate(proc)
        self._stop_up()
        for server in (self.redis, self.nats, self.postgres):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(server.stop)
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def up_running(self) -> bool:
        return self.up is not None and self.up.poll() is None

    async def ensure_up(self, timeout: float = 120.0) -> bool:
        """Start ``hubbub up`` if it is not running (a fault may have stopped it); wait
        until every hub is ready. True when it had to be started again."""
        restarted = False
        if not self.up_running():
            restarted = self.up is not None
            self._start_up()
        await self.wait_ready(timeout)
        return restarted

    def _start_up(self) -> None:
        self._stop_up()
        self.port = quiet_port(self.hubs)
        self.up_starts += 1
        argv = [sys.executable, "-m", "cli.main", "up", "--no-frontend"]
        argv += ["--workers", str(self.workers), "--hubs", str(self.hubs), "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            log.write(f"=== chaos: hubbub up (start {self.up_starts})\n".encode())
            log.flush()
            self.up = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(),
                start_new_session=True,  # our Ctrl-C is ours; we stop it in order
            )

    def _stop_up(self) -> None:
        if self.up is not None:
            _terminate(self.up)

    def start_extra_hub(self, nats_url: str) -> str:
        """One more hub (``hubbub serve``) beside ``hubbub up``'s, on a NATS URL of its
        own (a proxy the suite can cut); its base URL. Stopped by ``stop_extra_hubs``."""
        port = quiet_port(1)
        env = {**self._env, "NATS_URL": nats_url}
        env["HUBBUB_STATE_DIR"] = str(self.base / f"extra-{port}")
        self.extra_logs.append(self.base / f"extra-hub-{port}.log")
        with open(self.extra_logs[-1], "ab") as log:
            self.extra.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent(),
                    start_new_session=True,
                )
            )
        return f"http://{HOST}:{port}"

    def stop_extra_hubs(self) -> None:
        for proc in self.extra:
            _terminate(proc)
        self.extra.clear()

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while not await self.all_ready(session):
                if self.up is not None and self.up.poll() is not None:
                    raise RuntimeError(
                        f"hubbub up exited ({self.up.returncode}):\n{self.log_tail()}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not ready within {timeout:g}s:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    async def all_ready(self, session: aiohttp.ClientSession) -> bool:
        for url in self.hub_urls:
            if not await answers_200(session, url + "/api/v1/ready"):
                return False
        return True

    def log_mark(self) -> LogMark:
        """Where the logs end now, for ``log_since``."""
        size = self.log_path.stat().st_size if self.log_path.exists() else 0
        return LogMark(size, len(self.extra_logs))

    def log_since(self, mark: LogMark) -> str:
        """What ``hubbub up`` and its children wrote since ``mark`` (a ``log_mark()``),
        then all that each extra hub started since then wrote."""
        written = []
        if self.log_path.exists():
            with open(self.log_path, "rb") as log:
                log.seek(mark.up_log)
                written.append(log.read().decode(errors="replace"))
        for path in self.extra_logs[mark.extra_hubs :]:
            if path.exists():
                written.append(path.read_text(errors="replace"))
        return "".join(written)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # --- children -------------------------------------------------------------------------

    def child_pids(self) -> dict[str, int]:
        """The running children of our ``hubbub up`` by name (hub-1, worker-2, …), as its
        runtime.json records them — only those that really are its children."""
        if not self.up_running():
            return {}
        assert self.up is not None
        try:
            data: Any = orjson.loads((self.state_dir / "runtime.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        pids = data.get("pids") if isinstance(data, dict) else None
        if not isinstance(pids, dict):
            return {}
        ours = {}
        for name, pid in pids.items():
            if not isinstance(pid, int):
                continue
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).ppid() == self.up.pid:
                    ours[str(name)] = pid
        return ours

    def kill_child(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        """Send our ``hubbub up``'s child ``name`` ``sig`` (SIGKILL unless told); its pid."""
        pid = self.child_pids().get(name)
        if pid is None:
            raise RuntimeError(f"no running child {name!r} recorded in {self.state_dir}")
        os.kill(pid, sig)
        return pid

    # --- users ----------------------------------------------------------------------------

    async def _user(self, role: str) -> User:
        email = f"chaos-{role}-{secrets.token_hex(4)}@example.com"
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli.main", "user", "create", email, "--password-stdin"],
            cwd=ROOT,
            env=self._env,
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"hubbub user create failed:\n{result.stdout}\n{result.stderr}")
        async with aiohttp.ClientSession() as session:
            for _ in range(50):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.post(
                        self.hub_urls[0] + "/api/v1/auth/login",
                        json={"email": email, "password": PASSWORD},
                        timeout=aiohttp.ClientTimeout(total=10),
                    ) as response:
                        if response.status == 200:
                            token = (await response.json())["access_token"]
                            async with session.get(
                                self.hub_urls[0] + "/api/v1/users/me",
                                headers={"Authorization": f"Bearer {token}"},
                            ) as me:
                                user_id = (await me.json())["id"]
                            return User(str(user_id), email, str(token))
                await asyncio.sleep(0.2)
        raise RuntimeError(f"could not sign in as {email}")

    async def mailed_token(self, to: str, path: str) -> str:
        """The token of the newest ``path`` link (``/invitations``) mailed to ``to``, read
        from the dev mail catcher (``hubbub mail``)."""
        for _ in range(50):
            result = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "cli.main", "mail", "--limit", "200"],
                cwd=ROOT,
                env=self._env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            blocks = re.split(r"^--- #\d+ .*$", result.stdout, flags=re.MULTILINE)
            for block in reversed(blocks):  # printed oldest first
                if re.search(rf"^To: {re.escape(to)}$", block, flags=re.MULTILINE):
                    found = re.search(re.escape(path) + r"#token=([A-Za-z0-9_-]+)", block)
                    if found:
                        return found[1]
            await asyncio.sleep(0.2)
        raise RuntimeError(f"no mail to {to} with a {path} link")


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM one process we started, wait; SIGKILL its group if it will not go."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _raise_open_files_limit(want: int = 65_536) -> None:
    """The storm holds a thousand sockets in this process and in the hubs (which inherit
    the limit): raise the soft limit on open files towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
