"""``hubbub up``: the whole system on one machine, and nothing left behind after it.

Order of start: embedded servers for every URL not given → migrations and streams → the
workers → the hubs → wait until a hub answers ``/api/v1/ready`` → print the URLs. Order
of stop (Ctrl-C, SIGTERM, or any child exiting on its own): hubs (they drain their
sockets), workers (they finish in-flight requests), then the servers. Every child also
gets a parent-death signal, so even a SIGKILLed supervisor leaves no process behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from hubbub.config import Settings, clear_runtime, read_runtime, write_runtime
from hubbub.embedded.process import die_with_parent, free_port, port_is_free, stop_process
from hubbub.embedded.servers import EmbeddedNats, EmbeddedPostgres, EmbeddedRedis, EmbeddedServer

log = logging.getLogger("hubbub.up")


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        hubs: int = 1,
        workers: int = 1,
        port: int | None = None,
        frontend: bool = True,
        ready_timeout: float = 90.0,
    ) -> None:
        self.settings = settings
        self.hubs = max(1, hubs)
        self.workers = max(1, workers)
        self.port = port
        self.frontend = frontend
        self.ready_timeout = ready_timeout
        self.state_dir = settings.state_dir.resolve()
        self.servers: list[EmbeddedServer] = []
        self.children: list[Child] = []
        self.hub_ports: list[int] = []
        self._stopping = False
        self._frontend: Path | None = None

    # --- the whole run -------------------------------------------------------------

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            if read_runtime(self.state_dir):
                raise RuntimeError(
                    f"another `hubbub up` is running on {self.state_dir}; stop it first, "
                    "or give this one its own HUBBUB_STATE_DIR"
                )
            self._frontend_dir()  # build it first: a failing build stops before anything runs
            env = self._start_services()
            if self._stopping:
                return 130
            self._migrate(env)
            self.hub_ports = self._ports()
            # Recorded as soon as the servers are up and migrated, before the hubs are
            # ready: whoever sees a hub answer /ready can already run `hubbub user create`
            # (the e2e setup does exactly that, racing this process's own ready check).
            write_runtime(
                self.state_dir,
                {k: env[k] for k in ("DATABASE_URL", "NATS_URL", "REDIS_URL")}
                | {"HUB_URLS": ",".join(self._hub_urls())},
            )
            self._start_processes(env)
            self._wait_ready()
            self._print_banner(env)
            return self._watch()
        except _Stop:
            return 130
        except Exception as exc:
            log.error("hubbub up failed: %s", exc)
            return 1
        finally:
            if self.children or self.servers:
                clear_runtime(self.state_dir)
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            log.info("stopping (signal %s)…", signal.Signals(signum).name)
        self._stopping = True

    def _check_stop(self) -> None:
        if self._stopping:
            raise _Stop

    # --- services ----------------------------------------------------------------------

    def _start_services(self) -> dict[str, str]:
        s = self.settings
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "HUBBUB_SECRET_KEY": s.secret_key or "",
            "HUBBUB_STATE_DIR": str(self.state_dir),
        }
        wanted: list[tuple[str, str | None, EmbeddedServer]] = [
            ("DATABASE_URL", s.database_url, EmbeddedPostgres(self.state_dir / "postgres")),
            ("NATS_URL", s.nats_url, EmbeddedNats(self.state_dir / "nats")),
            ("REDIS_URL", s.redis_url, EmbeddedRedis(self.state_dir / "redis")),
        ]
        for var, given, server in wanted:
            self._check_stop()
            if given:
                env[var] = given
                continue
            log.info("starting embedded %s (data in %s)", server.name, server.data_dir)
            self.servers.append(server)
            env[var] = server.start()
        return env

    def _migrate(self, env: dict[str, str]) -> None:
        from hubbub.admin import ensure_nats_streams
        from migrations import upgrade_sync

        self._check_stop()
        log.info("applying migrations")
        upgrade_sync(env["DATABASE_URL"])
        settings = self.settings.model_copy(update={"nats_url": env["NATS_URL"]})
        asyncio.run(ensure_nats_streams(settings))

    # --- hubs and workers ------------------------------------------------------------

    def _ports(self) -> list[int]:
        first = self.port if self.port is not None else self.settings.port
        ports = [first + i for i in range(self.hubs)] if first else []
        if ports and all(port_is_free(p, self.settings.host) for p in ports):
            return ports
        if self.port is not None:
            taken = f"port {first} is" if self.hubs == 1 else f"ports {ports[0]}-{ports[-1]} are"
            raise RuntimeError(f"{taken} taken: choose another with --port")
        chosen = [free_port(self.settings.host) for _ in range(self.hubs)]
        log.info("port %s is taken; using %s", first, ", ".join(map(str, chosen)))
        return chosen

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hubbub.cli", *argv],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(signal.SIGTERM),
            start_new_session=True,
        )
        self.children.append(Child(name, proc))

    def _start_processes(self, env: dict[str, str]) -> None:
        self._check_stop()
        if not self.settings.public_url:
            # Workers write links (password-reset mail) that must reach a hub.
            env["HUBBUB_PUBLIC_URL"] = self._hub_urls()[0]
        for i in range(self.workers):
            self._spawn(f"worker-{i + 1}", ["worker"], env)
        hub_env = dict(env)
        frontend_dir = self._frontend_dir()
        if frontend_dir is not None:
            hub_env["HUBBUB_FRONTEND_DIR"] = str(frontend_dir)
        for i, port in enumerate(self.hub_ports):
            self._spawn(f"hub-{i + 1}", ["serve", "--port", str(port)], hub_env)

    def _frontend_dir(self) -> Path | None:
        if not self.frontend:
            return None
        if self._frontend is None:
            from hubbub.frontend import ensure_built

            self._frontend = ensure_built() or Path()
        return self._frontend if self._frontend != Path() else None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        pending = set(self.hub_ports)
        while pending:
            self._check_stop()
            self._check_children()
            for port in list(pending):
                if self._ready(port):
                    pending.discard(port)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"hub(s) on {sorted(pending)} not ready in {self.ready_timeout:g}s"
                )
            time.sleep(0.2)

    def _ready(self, port: int) -> bool:
        url = f"http://{self.settings.host}:{port}/api/v1/ready"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _check_children(self) -> None:
        for child in self.children:
            code = child.proc.poll()
            if code is not None:
                raise RuntimeError(f"{child.name} exited with code {code}; stopping everything")

    def _hub_urls(self) -> list[str]:
        return [f"http://{self.settings.host}:{port}" for port in self.hub_ports]

    def _print_banner(self, env: dict[str, str]) -> None:
        host = self.settings.host
        lines = ["", "Hubbub is up."]
        for port in self.hub_ports:
            base = f"http://{host}:{port}"
            if self._frontend_dir() is not None:
                lines.append(f"  app        {base}/")
            lines.append(f"  API        {base}/api/v1   (ready: {base}/api/v1/ready)")
            lines.append(f"  WebSocket  ws://{host}:{port}/ws")
        embedded = {s.name: s for s in self.servers}
        for label, var, name in (
            ("PostgreSQL", "DATABASE_URL", "postgres"),
            ("NATS", "NATS_URL", "nats"),
            ("Redis", "REDIS_URL", "redis"),
        ):
            origin = (
                f"embedded, data in {embedded[name].data_dir}"
                if name in embedded
                else "from " + var
            )
            lines.append(f"  {label:<10} {env[var]}   ({origin})")
        lines.append(f"  workers    {self.workers}")
        lines.append("Press Ctrl-C to stop.")
        print("\n".join(lines), flush=True)

    def _watch(self) -> int:
        while not self._stopping:
            for child in self.children:
                code = child.proc.poll()
                if code is not None:
                    log.error("%s exited with code %s; stopping everything", child.name, code)
                    return 1
            time.sleep(0.2)
        return 0

    # --- stopping ----------------------------------------------------------------------

    def _shutdown(self) -> None:
        hubs = [c for c in self.children if c.name.startswith("hub")]
        workers = [c for c in self.children if not c.name.startswith("hub")]
        for group, grace in (
            (hubs, self.settings.shutdown_timeout_s + 5),
            (workers, self.settings.drain_timeout_s + 5),
        ):
            for child in group:
                if child.proc.poll() is None:
                    child.proc.send_signal(signal.SIGTERM)
            for child in group:
                stop_process(child.proc, timeout=grace)
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception:
                log.exception("stopping embedded %s failed", server.name)
        if self.children or self.servers:
            log.info("stopped")


class _Stop(Exception):
    pass
