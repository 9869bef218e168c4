"""The `hubbub` command as a user runs it: up (whole system), check, migrate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil
import pytest

from cli.embedded.process import die_with_parent, free_port
from cli.runtime import read_runtime, read_runtime_pids
from hubbub.config import Settings
from tests.support.ports import quiet_port
from tests.support.processes import ROOT, run_hubbub, settings_env
from tests.support.waiting import eventually, wait_for

pytestmark = pytest.mark.slow


class Up:
    """A `hubbub up` process, its output (read as it comes, so it never blocks on a full
    pipe), and every process it started."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--no-frontend", *args],
            cwd=ROOT,
            preexec_fn=die_with_parent(),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.state_dir = Path(env["HUBBUB_STATE_DIR"])
        self.lines: list[str] = []
        self._up = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("Press Ctrl-C to stop."):
                self._up.set()
        self._up.set()  # the end: whoever waits for the banner stops waiting

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until_up(self, timeout: float = 90) -> None:
        self._up.wait(timeout)
        if not any(line.startswith("Press Ctrl-C to stop.") for line in self.lines):
            raise AssertionError("hubbub up did not come up:\n" + self.output)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def pids(self) -> dict[str, int]:
        """The pid of each child, as `hubbub up` records it in runtime.json."""
        return read_runtime_pids(self.state_dir)

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def close(self) -> None:
        """Whatever happened: no `up` left running, its pipe closed."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def alive(processes: list[psutil.Process]) -> list[str]:
    """Those of ``processes`` still there, each as pid, status and command line: a zombie
    (a child its parent never waited for) too."""
    left = []
    for p in processes:
        try:
            if p.is_running():
                left.append(f"{p.pid} {p.status()} {' '.join(p.cmdline()) or p.name()}")
        except psutil.ZombieProcess:
            left.append(f"{p.pid} zombie")
        except psutil.NoSuchProcess:  # gone between the questions
            continue
    return left


def get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310
            return True
    except urllib.error.HTTPError:
        return True  # 503 while the workers start: the hub is serving
    except OSError:
        return False


async def _ready(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
        body: dict[str, Any] = await r.json()
        return r.status, body


async def _assert_ready(http: aiohttp.ClientSession, hub: str) -> None:
    try:
        status, body = await _ready(http, f"{hub}/api/v1/ready")
    except aiohttp.ClientError as exc:
        raise AssertionError(f"{hub}: {exc!r}") from exc
    assert status == 200, body


class ReadyWatch:
    """Asks a hub's admin /ready (the one with details) every 50 ms while the block runs
    and keeps each answer (the status, or the error of a request that got none); at
    most 2,000 asks."""

    def __init__(self, http: aiohttp.ClientSession, admin: str) -> None:
        self.http = http
        self.url = f"{admin}/ready"
        self.answers: list[int | str] = []
        self.bodies: list[dict[str, Any]] = []  # of the answers that were not 200
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReadyWatch:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._done.set()
        assert self._task is not None
        await self._task

    async def _watch(self) -> None:
        for _ in range(2000):
            try:
                status, body = await _ready(self.http, self.url)
                self.answers.append(status)
                if status != 200:
                    self.bodies.append(body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.answers.append(repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), 0.05)
                return

    def assert_always_ready(self, *, but_lost: int = 0) -> None:
        """Every ask was answered 200, except at most ``but_lost`` honest 503s of a
        request a killed worker had taken (no worker answered it)."""
        assert self.answers, "never asked"
        assert set(self.answers) <= {200, 503}, self.answers
        assert len(self.bodies) <= but_lost, self.bodies
        for body in self.bodies:
            assert body["failing"] == ["postgres", "workers"], body
            assert "no worker answered" in body["components"]["postgres"]["error"], body


async def _kill_and_wait_for_restart(up: Up, name: str) -> int:
    """SIGKILL the child `name` by the pid runtime.json records; its new pid, once
    runtime.json records one."""
    old = up.pids()[name]
    os.kill(old, signal.SIGKILL)
    await wait_for(lambda: _restarted(up, name, old), timeout=30, what=f"{name} restarted")
    return up.pids()[name]


async def _restarted(up: Up, name: str, old_pid: int) -> bool:
    return up.pids().get(name) not in (None, old_pid)


async def _said(up: Up, pid: int, message: str) -> bool:
    """Has the child with this pid logged ``message`` (echoed by `up`)?"""
    return any(f":{pid}" in line and message in line for line in list(up.lines))


async def _contains(up: Up, text: str) -> bool:
    return text in up.output


def assert_none_alive(processes: list[psutil.Process]) -> None:
    """Once `up` has exited: it waits for each child it stops (and PostgreSQL for its
    backends) before it exits, so none is left, not even a zombie; nothing to wait for."""
    assert alive(processes) == []


class TestUp:
    def test_up_serves_ready_and_ctrl_c_leaves_no_process(self, up_env: dict[str, str]) -> None:
        """Embedded PostgreSQL, NATS and Redis, a worker and a hub; ready is 200 with every
        component ok; SIGINT (what Ctrl-C sends) stops them all."""
        up = Up(up_env)
        try:
            # Whoever sees the hub answer /ready may run `hubbub user create` at once, which
            # reads the servers' URLs from runtime.json: it must exist by then, although
            # `up` itself is still running its own ready check.
            ready_url = f"http://127.0.0.1:{up_env['HUBBUB_PORT']}/api/v1/ready"
            deadline = time.monotonic() + 90
            while not _answers(ready_url):
                assert time.monotonic() < deadline, "the hub never answered /ready"
                time.sleep(0.01)
            assert "HUB_URLS" in read_runtime(Path(up_env["HUBBUB_STATE_DIR"]))
            up.wait_until_up()
            started = up.descendants()
            names = " ".join(" ".join(p.cmdline()) for p in started)
            for expected in (
                "postgres",
                "nats-server",
                "redis-server",
                "cli.main worker",
                "cli.main serve",
            ):
                assert expected in names
            hub = f"http://127.0.0.1:{up_env['HUBBUB_PORT']}"
            status, body = get_json(f"{hub}/api/v1/ready")
            assert (status, body["components"]) == (
                200,
                {
                    "nats": "ok",
                    "deny_list": "ok",
                    "redis": "ok",
                    "workers": "ok",
                    "postgres": "ok",
                },
            )
            # Its admin listener: its port + 1000 unless taken; metrics there, not here.
            (admin,) = read_runtime(up.state_dir)["ADMIN_URLS"].split(",")
            assert f"  admin      {admin}/metrics" in up.output
            status, body = get_json(f"{admin}/ready")
            components = body["components"]
            assert isinstance(components, dict)
            assert status == 200
            assert str(components["workers"]["answered_by"]).endswith(f":{up.pids()['worker-1']}")
            with urllib.request.urlopen(f"{admin}/metrics", timeout=5) as response:  # noqa: S310
                assert b"hubbub_ws_connections 0" in response.read()
            with pytest.raises(urllib.error.HTTPError) as public_metrics:
                urllib.request.urlopen(f"{hub}/metrics", timeout=5)  # noqa: S310
            assert public_metrics.value.code == 404
            up.proc.send_signal(signal.SIGINT)
            assert up.finish() == 0
            assert_none_alive(started)
        finally:
            up.close()

    async def test_killed_children_and_servers_come_back_while_the_rest_serves(
        self, up_env: dict[str, str]
    ) -> None:
        """Under `up --workers 2 --hubs 2`: a SIGKILLed worker, hub, and each embedded
        server are started again (the hub on its port, a server on its port and data
        folder) and serve again within seconds, while the other hub answers throughout;
        each restart is one line of output; Ctrl-C then leaves no process behind."""
        up = Up(up_env, "--workers", "2", "--hubs", "2")
        try:
            up.wait_until_up()
            hub_1, hub_2 = read_runtime(up.state_dir)["HUB_URLS"].split(",")
            admin_1, admin_2 = read_runtime(up.state_dir)["ADMIN_URLS"].split(",")
            assert len({admin_1, admin_2}) == 2
            async with aiohttp.ClientSession() as http:
                async with ReadyWatch(http, admin_2) as watch:
                    new_worker = await _kill_and_wait_for_restart(up, "worker-1")
                    answered_by: set[str] = set()

                    async def the_new_worker_answers() -> bool:
                        status, body = await _ready(http, f"{admin_1}/ready")
                        if status == 200:
                            answered_by.add(str(body["components"]["workers"]["answered_by"]))
                        return any(a.endswith(f":{new_worker}") for a in answered_by)

                    await wait_for(the_new_worker_answers, timeout=30, what="the new worker")
                # The one request hub 2 may have had in flight on the worker that was killed.
                watch.assert_always_ready(but_lost=1)

                async with ReadyWatch(http, admin_2) as watch:
                    await _kill_and_wait_for_restart(up, "hub-1")
                    await eventually(lambda: _assert_ready(http, hub_1), timeout=30)
                watch.assert_always_ready()

                account = {"email": "kept@example.com", "password": "a long passphrase 42"}
                async with http.post(
                    f"{hub_1}/api/v1/auth/register", json=account | {"display_name": "Kept"}
                ) as response:
                    assert response.status == 202, await response.text()
                urls = read_runtime(up.state_dir)
                for name in ("redis", "postgres", "nats"):
                    await _kill_and_wait_for_restart(up, name)
                    assert read_runtime(up.state_dir) == urls  # the same ports
                    for hub in (hub_1, hub_2):
                        await eventually(lambda hub=hub: _assert_ready(http, hub), timeout=30)

                async def the_account_is_kept() -> None:
                    """Written before PostgreSQL's restart, still there after it."""
                    async with http.post(f"{hub_2}/api/v1/auth/login", json=account) as response:
                        assert response.status == 200, await response.text()

                await eventually(the_account_is_kept, timeout=10)

            for name in ("worker-1", "hub-1", "redis", "postgres", "nats"):
                assert f"{name} was killed by SIGKILL; restart 1 in 0.5s" in up.output
            started = up.descendants()
            up.proc.send_signal(signal.SIGINT)
            assert up.finish() == 0, up.output
            assert_none_alive(started)
        finally:
            up.close()

    async def test_a_child_that_keeps_dying_stops_everything(self, settings: Settings) -> None:
        """A worker killed again each time it is back: past the restart intensity `up`
        stops everything and exits 1, naming the worker and quoting its last lines."""
        env = settings_env(
            settings,
            HUBBUB_PORT=str(quiet_port(1)),
            HUBBUB_RESTART_INTENSITY="2",
            HUBBUB_RESTART_BACKOFF_S="0.1",
        )
        up = Up(env)
        try:
            up.wait_until_up()
            started = up.descendants()
            for _kill in range(3):  # two restarts allowed: the third death is one too many
                pid = up.pids()["worker-1"]
                # Once it has said it is ready, so that its last lines are worth quoting.
                await wait_for(
                    lambda pid=pid: _said(up, pid, "worker ready"), timeout=30, what="ready"
                )
                started += up.descendants()
                os.kill(pid, signal.SIGKILL)
                if _kill < 2:
                    await wait_for(
                        lambda pid=pid: _restarted(up, "worker-1", pid),
                        timeout=30,
                        what="the worker's restart",
                    )
            assert up.finish() == 1, up.output
            assert (
                "worker-1 was killed by SIGKILL after 2 restarts within 60s "
                "(HUBBUB_RESTART_INTENSITY=2): stopping everything. Its last lines:"
            ) in up.output
            quoted = up.output.split("Its last lines:\n")[1].splitlines()
            assert any(line.startswith("  | ") and "worker ready" in line for line in quoted)
            assert_none_alive(started)
        finally:
            up.close()

    async def test_a_stop_during_a_backoff_starts_nothing(self, settings: Settings) -> None:
        """SIGTERM while a killed worker waits out its backoff: `up` exits 0 at once and
        never starts the worker again."""
        env = settings_env(
            settings,
            HUBBUB_PORT=str(quiet_port(1)),
            HUBBUB_RESTART_BACKOFF_S="60",
            HUBBUB_RESTART_BACKOFF_MAX_S="60",
        )
        up = Up(env)
        try:
            up.wait_until_up()
            started = up.descendants()
            [started_worker] = [p for p in started if "cli.main worker" in " ".join(p.cmdline())]
            await wait_for(
                lambda: _said(up, started_worker.pid, "worker ready"), timeout=30, what="ready"
            )
            os.kill(up.pids()["worker-1"], signal.SIGKILL)
            await wait_for(
                lambda: _contains(up, "worker-1 was killed by SIGKILL; restart 1 in 60s"),
                timeout=30,
                what="the restart line",
            )
            up.proc.send_signal(signal.SIGTERM)
            killed = started_worker.pid
            # Well before the 60 s backoff is over, and no other worker ever ran.
            assert up.finish(timeout=30) == 0, up.output
            workers = set(re.findall(r'"proc":"worker:(\d+)"', up.output))
            assert workers == {str(killed)}, workers
            assert_none_alive(started)
        finally:
            up.close()

    def test_data_is_kept_between_runs_and_a_second_up_on_one_state_folder_is_refused(
        self, up_env: dict[str, str]
    ) -> None:
        port = up_env["HUBBUB_PORT"]
        ready_url = f"http://127.0.0.1:{port}/api/v1/ready"
        first = Up(up_env, "--port", port)
        try:
            first.wait_until_up()
            second = run_hubbub("up", "--no-frontend", env=up_env)
            assert second.returncode == 1
            assert "another `hubbub up` is running" in second.stderr + second.stdout
            # The hub closes this connection first, so its port keeps a TIME_WAIT entry
            # for a minute after it stops: that must not keep the next `up` off the port.
            assert get_json(ready_url)[0] == 200
        finally:
            first.proc.send_signal(signal.SIGTERM)
            assert first.finish() == 0
        # The same state folder (same secret, data reused) and, at once, the same port.
        again = Up(up_env, "--port", port)
        try:
            again.wait_until_up()
            assert (Path(up_env["HUBBUB_STATE_DIR"]) / "postgres" / "PG_VERSION").exists()
            assert get_json(ready_url)[0] == 200
        finally:
            again.proc.send_signal(signal.SIGTERM)
            assert again.finish() == 0

    async def test_a_hub_started_beside_up_connects_as_the_hub(
        self, up_env: dict[str, str]
    ) -> None:
        """`hubbub serve` while an `up` runs takes its servers' URLs and the hub user's NATS
        credentials: it hears its replies (inbox `_HUB`, the hub user's alone), so it is
        ready. (As the worker user it could not subscribe there, and never was.)"""
        up = Up(up_env)
        serve: subprocess.Popen[str] | None = None
        try:
            up.wait_until_up()
            port = quiet_port(1)
            env = {k: v for k, v in up_env.items() if k != "HUBBUB_PORT"}
            serve = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
                cwd=ROOT,
                env=env,
                preexec_fn=die_with_parent(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            ready = f"http://127.0.0.1:{port}/api/v1/ready"

            async def hub_ready() -> bool:
                assert serve is not None
                assert serve.poll() is None, "the hub exited"
                try:
                    return get_json(ready)[0] == 200
                except OSError:
                    return False

            await wait_for(hub_ready, timeout=60, what="the extra hub ready")
        finally:
            if serve is not None:
                serve.terminate()
                serve.wait(30)
            up.proc.send_signal(signal.SIGTERM)
            up.finish()
            up.close()

    def test_each_worker_serves_its_metrics_on_a_port_of_its_own(self, settings: Settings) -> None:
        """HUBBUB_WORKER_METRICS_PORT under `up --workers 2`: worker 1 on it, worker 2 on
        the next port; both serve, and `up` keeps running."""
        metrics = quiet_port(2)  # free, with the next one
        env = settings_env(
            settings, HUBBUB_PORT=str(quiet_port(1)), HUBBUB_WORKER_METRICS_PORT=str(metrics)
        )
        up = Up(env, "--workers", "2")
        try:
            up.wait_until_up()
            shown = f"(/metrics on 127.0.0.1:{metrics}, 127.0.0.1:{metrics + 1})"
            assert f"  workers    2   {shown}" in up.output
            for port in (metrics, metrics + 1):
                url = f"http://127.0.0.1:{port}/metrics"
                with urllib.request.urlopen(url, timeout=10) as response:
                    assert response.status == 200
            assert up.proc.poll() is None, up.output
        finally:
            up.proc.send_signal(signal.SIGTERM)
            assert up.finish() == 0, up.output
            up.close()

    def test_a_port_that_is_taken_is_refused_before_any_server_starts(
        self, up_env: dict[str, str]
    ) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = run_hubbub("up", "--no-frontend", "--port", str(port), env=up_env)
        assert result.returncode == 1, result.stderr
        assert f"port {port} is taken: choose another with --port" in result.stderr
        assert "starting embedded" not in result.stderr

    def test_up_uses_the_given_urls_and_runs_two_hubs_and_two_workers(
        self, settings: Settings
    ) -> None:
        """`hubbub up --hubs 2 --workers 2` with DATABASE_URL/NATS_URL/REDIS_URL set: no
        embedded server; two hubs on consecutive ports, both ready."""
        port = quiet_port(2)
        env = settings_env(settings, HUBBUB_PORT=str(port))
        up = Up(env, "--workers", "2", "--hubs", "2")
        try:
            up.wait_until_up()
            names = " ".join(" ".join(p.cmdline()) for p in up.descendants())
            assert "postgres -D" not in names
            assert "nats-server" not in names
            assert names.count("cli.main worker") == 2
            assert names.count("cli.main serve") == 2
            for hub_port in (port, port + 1):
                status, _ = get_json(f"http://127.0.0.1:{hub_port}/api/v1/ready")
                assert status == 200
        finally:
            up.proc.send_signal(signal.SIGTERM)
            assert up.finish() == 0


class TestCheckAndMigrate:
    def test_check_reports_each_reachable_service(self, settings: Settings) -> None:
        result = run_hubbub("check", env=settings_env(settings))
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert [line.split()[:2] for line in lines] == [
            ["ok", "PostgreSQL"],
            ["ok", "NATS"],
            ["ok", "Redis"],
        ]
        assert "JetStream on" in lines[1]

    def test_check_names_the_unreachable_service(self, settings: Settings) -> None:
        env = settings_env(settings, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
        result = run_hubbub("check", env=env)
        assert result.returncode == 1
        assert "!! Redis" in result.stdout
        assert "is not reachable" in result.stdout

    def test_check_says_in_one_line_why_nats_is_not_reachable(self, settings: Settings) -> None:
        """A NATS nobody listens on: its line names the refusal, no traceback comes with
        it, and the other services are checked all the same."""
        url = f"nats://127.0.0.1:{free_port()}"
        result = run_hubbub("check", env=settings_env(settings, NATS_URL=url), timeout=30)
        assert result.returncode == 1
        assert result.stderr == ""
        postgres, nats, redis = result.stdout.splitlines()
        assert (postgres.split()[:2], redis.split()[:2]) == (["ok", "PostgreSQL"], ["ok", "Redis"])
        assert nats.startswith(f"!! NATS at {url} is not reachable: ConnectionRefusedError"), nats

    def test_migrate_is_idempotent(self, settings: Settings) -> None:
        env = settings_env(settings)
        first, second = run_hubbub("migrate", env=env), run_hubbub("migrate", env=env)
        assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
        assert "database at head" in second.stdout

    def test_production_without_a_secret_refuses_to_start(self, settings: Settings) -> None:
        env = settings_env(settings, HUBBUB_ENV="production")
        env.pop("HUBBUB_SECRET_KEY")
        result = run_hubbub("serve", env=env)
        assert result.returncode == 2
        assert "HUBBUB_SECRET_KEY is not set" in result.stderr

    def test_serve_refuses_an_admin_port_that_is_its_public_port(self, settings: Settings) -> None:
        port = str(free_port())
        env = settings_env(settings, HUBBUB_PORT=port, HUBBUB_ADMIN_PORT=port)
        result = run_hubbub("serve", env=env)
        assert result.returncode == 2
        assert f"HUBBUB_ADMIN_PORT ({port}) is the hub's public port" in result.stderr


class TestApiKeys:
    def test_create_list_and_revoke_a_key(self, settings: Settings) -> None:
        env = settings_env(settings)
        created = run_hubbub("apikey", "create", "billing", "--channel", "public:*", env=env)
        assert created.returncode == 0, created.stderr
        key = created.stdout.split("keep it secret): ")[1].strip()
        assert key.startswith("hbk_")
        assert len(key) > 40
        listed = run_hubbub("apikey", "list", env=env)
        assert "billing" in listed.stdout
        assert key[:12] in listed.stdout
        assert key not in listed.stdout  # never shown again
        revoked = run_hubbub("apikey", "revoke", "billing", env=env)
        assert revoked.returncode == 0
        assert "revoked" in run_hubbub("apikey", "list", env=env).stdout

    def test_a_bad_pattern_is_refused_with_the_reason(self, settings: Settings) -> None:
        result = run_hubbub(
            "apikey", "create", "x", "--channel", "everything", env=settings_env(settings)
        )
        assert result.returncode == 2
        assert "is not a channel pattern" in result.stderr

    def test_without_a_database_the_command_names_the_setting(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        env = settings_env(settings, DATABASE_URL="", HUBBUB_STATE_DIR=str(tmp_path / "none"))
        result = run_hubbub("apikey", "list", env=env)
        assert result.returncode == 2
        assert "DATABASE_URL is not set" in result.stderr


class TestServices:
    def test_the_url_it_prints_carries_no_one_elses_credentials(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        """The service connects with its own user: NATS_URL's user info (the operator's
        password or token) is left out of the line it is told to use."""
        env = settings_env(
            settings,
            HUBBUB_STATE_DIR=str(tmp_path / "state"),
            NATS_URL="nats://ops:s3cret@127.0.0.1:4222,nats://tok3n@127.0.0.1:4223",
        )
        created = run_hubbub("service", "create", "news", "--channel", "public:*", env=env)
        assert created.returncode == 0, created.stderr
        assert "  NATS_URL=nats://127.0.0.1:4222,nats://127.0.0.1:4223\n" in created.stdout
        assert "s3cret" not in created.stdout
        assert "tok3n" not in created.stdout

    def test_create_list_and_revoke_a_service_without_a_running_nats(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        env = settings_env(settings, HUBBUB_STATE_DIR=str(tmp_path / "state"))
        created = run_hubbub("service", "create", "news", "--channel", "public:*", env=env)
        assert created.returncode == 0, created.stderr
        assert "NATS_USER=svc-news" in created.stdout
        assert "no embedded NATS runs on this state folder" in created.stdout
        # Compose's NATS reads it on a SIGHUP; in the cluster profile, every node.
        assert "`docker compose kill -s HUP nats nats-2 nats-3`" in created.stdout
        listed = run_hubbub("service", "list", env=env)
        assert listed.stdout.split()[:2] == ["news", "svc-news"]
        assert run_hubbub("service", "revoke", "news", env=env).returncode == 0
        again = run_hubbub("service", "revoke", "news", env=env)
        assert (again.returncode, again.stderr.strip()) == (2, "hubbub: no service named 'news'")
        assert run_hubbub("service", "list", env=env).stdout.strip() == "no services"
