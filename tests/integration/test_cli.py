"""The `hubbub` command as a user runs it: up (whole system), check, migrate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import psutil
import pytest

from hubbub.config import Settings, read_runtime
from hubbub.embedded.process import die_with_parent, free_port, port_is_free
from tests.support.processes import ROOT, run_hubbub, settings_env

pytestmark = pytest.mark.slow


class Up:
    """A `hubbub up` process, its output, and every process it started."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hubbub.cli", "up", "--no-frontend", *args],
            cwd=ROOT,
            preexec_fn=die_with_parent(),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    def wait_until_up(self, timeout: float = 90) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            self.lines.append(line)
            if line.startswith("Press Ctrl-C to stop."):
                return
        raise AssertionError("hubbub up did not come up:\n" + "".join(self.lines))

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        assert self.proc.stdout is not None
        self.lines.extend(self.proc.stdout.readlines())
        return code


def alive(processes: list[psutil.Process]) -> list[str]:
    return [
        " ".join(p.cmdline())
        for p in processes
        if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    ]


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


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment for `hubbub up`: no service URLs (so all embedded), own state."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "NATS_URL", "REDIS_URL") and not k.startswith("HUBBUB_")
    }
    env.update(
        {
            "HUBBUB_STATE_DIR": str(tmp_path / "state"),
            "HUBBUB_PORT": str(free_port()),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


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
                "hubbub.cli worker",
                "hubbub.cli serve",
            ):
                assert expected in names
            status, body = get_json(f"http://127.0.0.1:{up_env['HUBBUB_PORT']}/api/v1/ready")
            assert status == 200
            components = body["components"]
            assert isinstance(components, dict)
            assert {name: c["ok"] for name, c in components.items()} == {
                "nats": True,
                "redis": True,
                "workers": True,
                "postgres": True,
            }
            up.proc.send_signal(signal.SIGINT)
            assert up.finish() == 0
            time.sleep(0.5)
            assert alive(started) == []
        finally:
            if up.proc.poll() is None:
                up.proc.kill()

    def test_a_crashed_child_stops_everything(self, up_env: dict[str, str]) -> None:
        """A worker killed with SIGKILL: `up` stops the rest and exits 1, leaving nothing."""
        up = Up(up_env)
        try:
            up.wait_until_up()
            started = up.descendants()
            [worker] = [p for p in started if "hubbub.cli worker" in " ".join(p.cmdline())]
            worker.kill()
            assert up.finish() == 1
            assert "worker-1 exited" in "".join(up.lines)
            time.sleep(0.5)
            assert alive(started) == []
        finally:
            if up.proc.poll() is None:
                up.proc.kill()

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

    def test_up_uses_the_given_urls_and_runs_two_hubs_and_two_workers(
        self, settings: Settings
    ) -> None:
        """`hubbub up --hubs 2 --workers 2` with DATABASE_URL/NATS_URL/REDIS_URL set: no
        embedded server; two hubs on consecutive ports, both ready."""
        port = free_port()
        while not port_is_free(port + 1):
            port = free_port()
        env = settings_env(settings, HUBBUB_PORT=str(port))
        up = Up(env, "--workers", "2", "--hubs", "2")
        try:
            up.wait_until_up()
            names = " ".join(" ".join(p.cmdline()) for p in up.descendants())
            assert "postgres -D" not in names
            assert "nats-server" not in names
            assert names.count("hubbub.cli worker") == 2
            assert names.count("hubbub.cli serve") == 2
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
