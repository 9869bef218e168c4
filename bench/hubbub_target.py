"""The Hubbub target for the WebSocket benchmarks: one real hub process.

``--target hubbub`` (``bench.fanout`` and ``bench.sockets`` run it after the bare
baseline by default). It runs ``hubbub serve`` with embedded
NATS (JetStream) and Redis — or ``NATS_URL`` / ``REDIS_URL`` when set. Sockets connect
with a signed access token and subscribe to ``public:<channel>``, in the upgrade request
(``--target-opt hubbub@connect=frame``: with frames after it); a publication is what
a backend service does: a JetStream publish on the channel's subject, stored in the
channel's history, then fanned out by the hub. So publish-to-receive latency includes
JetStream's write and republish — the bare baseline has neither.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import orjson

from bench.targets import REPO_ROOT, Target
from bench.wsclient import Script, WSTarget
from cli.embedded import EmbeddedNats, EmbeddedRedis
from cli.embedded.process import die_with_parent
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.subjects import Subjects
from hubbub.natsconn import connect_nats
from hubbub.streams import ensure_streams
from tests.support.http import wait_until_200
from tests.support.ports import ADMIN_OFFSET, quiet_port

NAMESPACE = "bench"


def channel_of(name: str | None) -> str:
    """The bench's free-form channel name as a Hubbub public channel."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", name or "bench")[:64]
    return f"public:{cleaned}"


class HubbubTarget(Target):
    name = "hubbub"

    def __init__(
        self, host: str = "127.0.0.1", history: str = "", connect: str = "upgrade"
    ) -> None:
        if connect not in ("upgrade", "frame"):
            raise ValueError(f"connect={connect!r}: 'upgrade' or 'frame'")
        self.host = host
        # How sockets connect: in the upgrade request (``Authorization`` and
        # ``?subscribe=``, one round trip), or with ``connect``/``subscribe`` frames after
        # it (two).
        self.connect = connect
        # Channel history kept for public channels (publications per channel), e.g. for a
        # benchmark whose clients must be able to recover everything they miss.
        self.policies = {"public": {"history_max_msgs": int(history)}} if history else {}
        self.port = 0
        self.admin_port = 0  # the hub's admin listener: /metrics
        self.secret = secrets.token_urlsafe(48)
        self._dir = Path(tempfile.mkdtemp(prefix="hubbub-bench-"))
        self._servers: list[EmbeddedNats | EmbeddedRedis] = []
        self._nats: EmbeddedNats | None = None
        self._hub: asyncio.subprocess.Process | None = None
        self._nc: Any = None
        self._subjects = Subjects(NAMESPACE)
        self.nats_url = os.environ.get("NATS_URL", "")
        self.redis_url = os.environ.get("REDIS_URL", "")

    def token(self, user: str) -> str:
        now = int(time.time())
        claims = {
            "sub": user, "role": "member", "sid": uuid.uuid4().hex, "jti": uuid.uuid4().hex,
            "iat": now, "nbf": now, "exp": now + 3600, "iss": "hubbub", "aud": "hubbub",
        }  # fmt: skip
        return jwt.encode(claims, self.secret, algorithm="HS256")

    async def start(self) -> None:
        if not self.nats_url:
            self._nats = EmbeddedNats(self._dir / "nats")
            self._servers.append(self._nats)
            self.nats_url = self._nats.start()
        if not self.redis_url:
            redis = EmbeddedRedis(self._dir / "redis")
            self._servers.append(redis)
            self.redis_url = redis.start()
        self._nc = await connect_nats(self.nats_url, "bench-publisher")
        settings = Settings(_env_file=None, channel_policies=self.policies)
        await ensure_streams(self._nc.jetstream(), self._subjects, settings.policies())
        self.port = quiet_port(1)
        self.admin_port = self.port + ADMIN_OFFSET
        env = {
            **os.environ,
            "NATS_URL": self.nats_url,
            "REDIS_URL": self.redis_url,
            "HUBBUB_NAMESPACE": NAMESPACE,
            "HUBBUB_SECRET_KEY": self.secret,
            "HUBBUB_STATE_DIR": str(self._dir / "state"),
            "HUBBUB_ACCESS_LOG": "false",
            "HUBBUB_LOG_LEVEL": "WARNING",
            "HUBBUB_ADMIN_PORT": str(self.admin_port),
            # The load client connects thousands of sockets from one address at once.
            "HUBBUB_WS_CONNECT_TIMEOUT_S": "60",
            "HUBBUB_MAX_SOCKETS_PER_USER": "1000000",  # all of them as one bench user
            "PYTHONPATH": str(REPO_ROOT),
            "HUBBUB_CHANNEL_POLICIES": orjson.dumps(self.policies).decode(),
        }
        self._hub = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli.main", "serve", "--port", str(self.port),
            cwd=str(REPO_ROOT), env=env, start_new_session=True,
            preexec_fn=die_with_parent(),  # a killed benchmark leaves no hub behind
        )  # fmt: skip
        url = f"http://{self.host}:{self.port}/api/v1/health"
        await wait_until_200(url, timeout=30, processes=[self._hub], what="the hub started")

    async def stop(self) -> None:
        if self._hub is not None and self._hub.returncode is None:
            self._hub.terminate()
            try:
                await asyncio.wait_for(self._hub.wait(), 15)
            except TimeoutError:
                self._hub.kill()
                await self._hub.wait()
        if self._nc is not None:
            await self._nc.close()
        for server in reversed(self._servers):
            server.stop()

    def ws_target(self) -> WSTarget:
        return WSTarget(self.host, self.port, "/ws", subprotocols=("hubbub.v1.json",))

    def slow_consumer_cuts(self) -> int | None:
        """How many times the embedded NATS cut a client of its own (the hub, above all)
        as a slow consumer, by its log; None on the ``NATS_URL`` server."""
        if self._nats is None or not self._nats.log_path.exists():
            return None
        return self._nats.log_path.read_text(errors="replace").count("Slow Consumer Detected")

    def server_pids(self) -> list[int]:
        pids = [self._hub.pid] if self._hub is not None else []
        if self._nats is not None and self._nats.proc is not None:
            pids.append(self._nats.proc.pid)
        return pids

    def socket_scripts(self, n: int, channel: str | None) -> Script:
        token = self.token("bench-user")
        if self.connect == "upgrade":
            return Script(
                ready_after=1 if channel is None else 2,  # ``connected``, ``subscribed``
                query="" if channel is None else f"subscribe={quote(channel_of(channel))}",
                headers=(("Authorization", f"Bearer {token}"),),
            )
        frames = [b'{"id":1,"op":"connect","token":"%s"}' % token.encode()]
        if channel is not None:
            frames.append(
                b'{"id":2,"op":"subscribe","channel":"%s"}' % channel_of(channel).encode()
            )
        return Script(tuple(frames), ready_after=len(frames))

    async def await_sockets(self, n: int, timeout: float = 60.0) -> None:
        """Until the hub holds exactly ``n`` sockets (by its ``hubbub_ws_connections``),
        as the bare target waits: after the clients close, ``n`` 0 waits for the hub to
        let them all go."""
        deadline = time.monotonic() + timeout
        while True:
            held = await asyncio.to_thread(self._metric, "hubbub_ws_connections")
            if held == n:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the hub holds {held} sockets, expected {n}")
            await asyncio.sleep(0.1)

    def _metric(self, name: str) -> float:
        with urllib.request.urlopen(
            f"http://{self.host}:{self.admin_port}/metrics", timeout=5
        ) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0

    async def publish(self, channel: str, data: bytes) -> int | None:
        subject = self._subjects.event(Channel.parse(channel_of(channel)))
        await self._nc.jetstream().publish(subject, data)
        return None
