"""The shipped deploy/ files against real processes: Debian's nginx, started with
deploy/nginx/nginx.conf (its listen port and hub addresses rewritten,
tests/support/deploy.py), in front of two `hubbub serve` processes and a worker.

* A socket through nginx whose hub is killed (SIGKILL) reconnects through nginx to the
  other hub and gets every publication once, in order; REST through nginx keeps
  answering while the dead hub is left out.
* The static app comes compressed (brotli or gzip), the API does not.
* A browser on nginx's address (a port other than 80, as compose publishes it) passes
  the hubs' same-origin checks: its socket is upgraded and its session cookie refreshed.
* A client that falls silent in its headers or body is cut off by nginx after 10 s.
* A body nginx takes but a hub refuses as too large is the hub's 413, not a 502, and
  leaves both hubs in nginx's pool.
* The hubs' /metrics holds every metric name the alerts and the dashboards read."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil
import pytest
from nats.aio.client import Client as NATS

from cli.embedded.process import die_with_parent, free_port
from hub.session_cookie import COOKIE
from hubbub.client import HubbubClient
from hubbub.config import Settings
from tests.e2e.test_realtime import publish
from tests.support import deploy
from tests.support.accounts import PASSWORD, SPA, make_user
from tests.support.http import wait_until_200
from tests.support.ports import ADMIN_OFFSET, quiet_port
from tests.support.processes import ROOT, settings_env
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

STARTUP_S = 30.0


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Hub:
    """``hubbub serve`` on ``port``, its admin listener on ``port`` + 1000, trusting
    X-Forwarded-For from nginx (127.0.0.1), serving ``site`` as the static app."""

    def __init__(self, settings: Settings, site: Path, port: int) -> None:
        self.port, self.admin_port = port, port + ADMIN_OFFSET
        env = settings_env(
            settings,
            HUBBUB_ACCESS_LOG="false",
            HUBBUB_ADMIN_PORT=str(self.admin_port),
            HUBBUB_TRUSTED_PROXIES="127.0.0.1",
            HUBBUB_FRONTEND_DIR=str(site),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port)],
            cwd=ROOT,
            preexec_fn=die_with_parent(),
            env=env,
        )

    async def started(self) -> None:
        url = f"http://127.0.0.1:{self.port}/api/v1/health"
        await wait_until_200(
            url, timeout=STARTUP_S, processes=[self.proc], what=f"hub on {self.port}"
        )


# nginx started by root runs its workers as ``nobody``, who may not pass the test's
# folders (0700) to the temp files it keeps large bodies in: as root, its workers are
# root too, so that no folder of the test run need be opened to others.
RUN_WORKERS_AS_ROOT = " user root;" if os.geteuid() == 0 else ""


class Nginx:
    """Debian's nginx in the foreground (``daemon off``), as a child of the test.

    Its workers run as the test's user, root included (``RUN_WORKERS_AS_ROOT``)."""

    def __init__(self, folder: Path, hubs: list[Hub]) -> None:
        self.port = free_port()
        self.folder = folder
        self.config = deploy.local_nginx_config(
            folder, port=self.port, hub_ports=[hub.port for hub in hubs]
        )
        self.proc = subprocess.Popen(
            deploy.nginx_command(self.config, "-g", "daemon off;" + RUN_WORKERS_AS_ROOT),
            preexec_fn=die_with_parent(),
            stderr=subprocess.STDOUT,
            stdout=(folder / "output.log").open("wb"),
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def started(self) -> None:
        """Listening. (No request goes through it: it would leave a kept-alive
        connection to a hub, and the tests count nginx's connections to hubs.)"""
        deadline = time.monotonic() + STARTUP_S
        while True:
            if self.proc.poll() is not None:
                log = (self.folder / "error.log").read_text(errors="replace")
                raise AssertionError(f"nginx exited with {self.proc.returncode}:\n{log}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return

    def upstream_ports(self) -> list[int]:
        """The hub ports nginx's workers hold connections to right now."""
        workers = psutil.Process(self.proc.pid).children()
        return sorted(
            conn.raddr.port
            for worker in workers
            for conn in worker.net_connections(kind="tcp")
            if conn.raddr
            and conn.status == psutil.CONN_ESTABLISHED
            and conn.laddr.port != self.port  # not a client's connection to nginx
        )


# A page of the static app, large enough to be compressed (nginx: from 1 KiB).
PAGE = "<!doctype html><title>Hubbub</title>" + "".join(
    f"<p>card {n}: the board of a workspace</p>" for n in range(200)
)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "index.html").write_text(PAGE)
    return folder


@pytest.fixture
async def hubs(settings: Settings, nc: NATS, worker: Any, site: Path) -> AsyncIterator[list[Hub]]:
    first = quiet_port(2)
    started = [Hub(settings, site, first), Hub(settings, site, first + 1)]
    try:
        await asyncio.gather(*(hub.started() for hub in started))
        yield started
    finally:
        for hub in started:
            _stop(hub.proc)


@pytest.fixture
async def nginx(hubs: list[Hub], tmp_path: Path) -> AsyncIterator[Nginx]:
    server = Nginx(tmp_path, hubs)
    try:
        await server.started()
        yield server
    finally:
        _stop(server.proc, signal.SIGQUIT)  # graceful: the workers finish, then exit


class TestThroughNginx:
    async def test_a_socket_whose_hub_dies_reconnects_through_nginx_and_loses_nothing(
        self, nginx: Nginx, hubs: list[Hub], settings: Settings, nc: NATS
    ) -> None:
        tokens = TestTokens(settings)
        client = HubbubClient(
            f"ws://127.0.0.1:{nginx.port}/ws", tokens.issue("through-nginx"), backoff_min=0.05
        )
        try:
            await client.connect()
            sub = await client.subscribe("public:balanced")
            # The upgraded socket is nginx's only connection to a hub: that hub is the one.
            await wait_for(lambda: len(nginx.upstream_ports()) == 1, what="nginx → one hub")
            (port,) = nginx.upstream_ports()
            doomed = next(hub for hub in hubs if hub.port == port)
            other = next(hub for hub in hubs if hub is not doomed)

            offsets = [await publish(nc, settings, "public:balanced", {"n": n}) for n in range(20)]
            doomed.proc.send_signal(signal.SIGKILL)
            offsets += [
                await publish(nc, settings, "public:balanced", {"n": n}) for n in range(20, 40)
            ]

            got = []
            while len(got) < len(offsets):
                pub = await asyncio.wait_for(sub.queue.get(), 20)
                got.append((pub.offset, pub.data["n"]))
            assert got == [(offset, n) for n, offset in enumerate(offsets)]  # once, in order
            assert client.reconnects >= 1
            assert sub.resets == 0
            assert nginx.upstream_ports() == [other.port]
            assert client.url == f"ws://127.0.0.1:{nginx.port}/ws"  # the same address
            final = await publish(nc, settings, "public:balanced", {"n": 40})
            pub = await asyncio.wait_for(sub.queue.get(), 20)
            assert (pub.offset, pub.data) == (final, {"n": 40})
        finally:
            await client.close()

    async def test_rest_through_nginx_keeps_answering_with_one_hub_dead(
        self, nginx: Nginx, hubs: list[Hub]
    ) -> None:
        """A request nginx sends to the dead hub fails to connect and goes to the other
        (proxy_next_upstream); after max_fails the dead hub is left out."""
        hubs[0].proc.send_signal(signal.SIGKILL)
        hubs[0].proc.wait(10)
        async with aiohttp.ClientSession() as session:
            for _ in range(6):
                async with session.get(f"{nginx.url}/api/v1/ready") as response:
                    assert response.status == 200, await response.text()
        errors = (nginx.folder / "error.log").read_text()
        assert f"127.0.0.1:{hubs[0].port}" in errors  # nginx tried it, and moved on

    async def test_bodies_over_the_hubs_limit_are_the_hubs_413s_and_leave_both_hubs_up(
        self, nginx: Nginx, settings: Settings
    ) -> None:
        """nginx takes bodies up to 2 MiB (client_max_body_size) and sends each on whole,
        from its temp file, after the headers; a hub refuses one over its 1 MiB by its
        Content-Length at once, and must still read all nginx sends. Were it to close
        early, nginx's send would fail (a broken pipe), nginx would try the other hub
        (proxy_next_upstream error), answer 502 and leave both hubs out for fail_timeout
        (10 s): every request a 502. Sizes across the range between the two limits."""
        nginx_limit = 2 * 1024 * 1024
        low, high = settings.max_body_bytes + 1, nginx_limit
        answers: list[tuple[int, int, int]] = []  # size, the POST's status, health's
        async with aiohttp.ClientSession() as session:
            for size in (low + (high - low) * n // 29 for n in range(30)):
                body = b'{"name": "' + b"a" * (size - 12) + b'"}'
                async with session.post(
                    f"{nginx.url}/api/v1/workspaces",
                    data=io.BytesIO(body),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    status, problem = response.status, await response.read()
                if status == 413:
                    assert orjson.loads(problem)["code"] == "too_large"
                async with session.get(f"{nginx.url}/api/v1/health") as response:
                    answers.append((len(body), status, response.status))
        assert [answer for answer in answers if answer[1:] != (413, 200)] == []
        errors = (nginx.folder / "error.log").read_text()
        for trouble in ("temporarily disabled", "no live upstreams", "Broken pipe"):
            assert trouble not in errors, errors[-2000:]

    async def test_a_browser_on_nginxs_address_opens_a_socket_and_refreshes_its_cookie(
        self, nginx: Nginx, db: Any
    ) -> None:
        """The browser's Origin is nginx's (http://127.0.0.1:PORT); the hubs compare it
        with the Host nginx passes on, which must keep the port."""
        await make_user(db, "ann@example.com")
        origin = {"Origin": nginx.url}
        async with aiohttp.ClientSession() as session:
            upgrade = {
                **origin,
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": "hubbub.v1.json",
            }
            async with session.get(f"{nginx.url}/ws", headers=upgrade) as r:
                assert r.status == 101, await r.text()
            login = {"email": "ann@example.com", "password": PASSWORD}
            async with session.post(
                f"{nginx.url}/api/v1/auth/login", headers={**SPA, **origin}, json=login
            ) as r:
                assert r.status == 200, await r.text()
                cookie = r.cookies[COOKIE].value
            session.cookie_jar.clear()  # the cookie goes exactly as a browser sends it
            async with session.post(
                f"{nginx.url}/api/v1/auth/refresh",
                headers={**SPA, **origin, "Cookie": f"{COOKIE}={cookie}"},
            ) as r:
                assert r.status == 200, await r.text()
                assert r.cookies[COOKIE].value != cookie  # rotated

    async def test_a_client_that_falls_silent_is_cut_off_by_nginx_within_10_s(
        self, nginx: Nginx
    ) -> None:
        """nginx receives a request's whole body before a hub sees it: a client that
        stops sending its headers or its body is nginx's to end, after 10 s of
        silence (client_header_timeout, client_body_timeout), not its default 60 s.
        It closes the connection without an answer and logs a 408."""

        async def silent(request: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", nginx.port)
            try:
                writer.write(request)
                await writer.drain()
                return await asyncio.wait_for(reader.read(), 20)  # until nginx closes
            finally:
                writer.close()

        headers = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no end
        body = (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
        )
        assert await asyncio.gather(silent(headers), silent(body)) == [b"", b""]
        logged = (nginx.folder / "access.log").read_text().splitlines()
        assert sorted(line.split('"')[1:3] for line in logged) == [
            ["GET /api/v1/health HTTP/1.1", " 408 0 "],
            ["POST /api/v1/auth/login HTTP/1.1", " 408 0 "],
        ]

    async def test_the_static_app_is_compressed_and_the_api_is_not(self, nginx: Nginx) -> None:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async with session.get(f"{nginx.url}/", headers={"Accept-Encoding": "gzip"}) as r:
                assert (r.status, r.headers.get("Content-Encoding")) == (200, "gzip")
                assert gzip.decompress(await r.read()).decode() == PAGE
            async with session.get(f"{nginx.url}/", headers={"Accept-Encoding": "br"}) as r:
                assert (r.status, r.headers.get("Content-Encoding")) == (200, "br")
                assert len(await r.read()) < len(PAGE) / 4
            api = f"{nginx.url}/api/v1/openapi.json"  # large JSON
            async with session.get(api, headers={"Accept-Encoding": "br, gzip"}) as r:
                assert r.status == 200
                assert "Content-Encoding" not in r.headers
                assert len(await r.read()) > 10_000

    async def test_the_hubs_export_every_metric_the_alerts_and_dashboards_read(
        self, nginx: Nginx, hubs: list[Hub], settings: Settings
    ) -> None:
        """What Prometheus would scrape from each hub (its admin listener), after traffic
        through nginx: a socket and REST requests."""
        client = HubbubClient(f"ws://127.0.0.1:{nginx.port}/ws", TestTokens(settings).issue("m"))
        try:
            await client.connect()
            await client.subscribe("public:metrics")
            async with aiohttp.ClientSession() as session:
                for _ in range(4):
                    async with session.get(f"{nginx.url}/api/v1/health") as response:
                        assert response.status == 200
                exported: set[str] = set()
                for hub in hubs:
                    url = f"http://127.0.0.1:{hub.admin_port}/metrics"
                    async with session.get(url) as response:
                        assert response.status == 200
                        exported |= deploy.exported_names(await response.text())
        finally:
            await client.close()
        missing = {
            where: sorted(names)
            for where, expr in deploy.every_expression().items()
            if (names := deploy.metric_names(expr) - exported - deploy.SCRAPE_SERIES)
        }
        assert missing == {}
