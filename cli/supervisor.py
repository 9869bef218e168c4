"""``hubbub up``: the whole system on one machine, kept running, and nothing left behind
after it.

Order of start: embedded servers for every URL not given → migrations and streams → the
workers → the hubs → wait until a hub answers ``/api/v1/ready`` → print the URLs. Then
it supervises, one for one as Erlang/OTP does: a hub, worker or embedded server that
exits on its own is started again after a backoff (hubs on their port, servers on their
port and data folder) while the others keep serving; one that needs more restarts than
the intensity allows (cli/restarts.py) stops everything, with its last lines of
output. Order of stop (Ctrl-C, SIGTERM, or that): hubs (they drain their sockets),
workers (they finish in-flight requests), then the servers. Every child also gets a
parent-death signal, so even a SIGKILLed supervisor leaves no process behind.

``.hubbub/runtime.json`` holds the servers' URLs and, kept current, each child's pid.
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
from abc import ABC, abstractmethod
from argparse import ArgumentTypeError
from pathlib import Path
from types import FrameType
from typing import IO

from cli.admin.system import redact
from cli.embedded.nats_auth import ROLES, NatsAuthFolder
from cli.embedded.process import (
    OutputTail,
    die_with_parent,
    free_port,
    port_is_free,
    wait_or_kill,
)
from cli.embedded.servers import (
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServer,
    nats_cluster,
)
from cli.failures import FAILED, STOPPED, explain
from cli.restarts import GiveUp, Restart, RestartHistory, RestartPolicy
from cli.runtime import LOCK_FILE, clear_runtime, hold_state_dir, make_state_dir, write_runtime
from hubbub.config import Settings

log = logging.getLogger("hubbub.up")

TAIL_LINES = 20  # of a child's output, shown when it stops everything
# Unless HUBBUB_ADMIN_PORT is set, each hub's admin listener (/metrics, /ready with
# details) is on its public port + this, or on a free port when that one is taken.
ADMIN_PORT_OFFSET = 1000
MAX_NATS_NODES = 5
# The embedded PostgreSQL's connections beyond the workers' (``postgres_connections``).
COMMAND_CONNECTIONS = 20
# How long past their drain timeouts a stopping hub (HUBBUB_SHUTDOWN_TIMEOUT_S) or worker
# (HUBBUB_DRAIN_TIMEOUT_S) has before it is killed: a worker's stop after its drain takes
# at most workers/app.py's AFTER_DRAIN_S of it.
STOP_GRACE_S = 5.0


class Supervised(ABC):
    """A process `hubbub up` keeps running: its restarts, and when the next is due."""

    def __init__(self, name: str, history: RestartHistory) -> None:
        self.name = name
        self.history = history
        self.restart_at: float | None = None  # waiting for its backoff to end

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def exit_code(self) -> int | None:
        """Its exit code (negative: the signal) once it has exited; None while it runs."""

    @property
    @abstractmethod
    def pid(self) -> int | None: ...

    @abstractmethod
    def last_lines(self) -> list[str]: ...


class Child(Supervised):
    """A hub or worker: ``python -m cli.main ARGV``, its output echoed to ours."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], history: RestartHistory
    ) -> None:
        super().__init__(name, history)
        self.argv = argv
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.tail: OutputTail | None = None

    @property
    def is_hub(self) -> bool:
        return self.argv[0] == "serve"

    def start(self) -> None:
        self.history.started()  # a failed start counts as a run that ended at once
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *self.argv],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(signal.SIGTERM),
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self.tail = OutputTail(self.proc.stdout, _our_output(), keep=TAIL_LINES)

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def last_lines(self) -> list[str]:
        return self.tail.lines() if self.tail is not None else []


class Server(Supervised):
    """An embedded PostgreSQL, NATS or Redis; started again on its port and data folder."""

    def __init__(self, server: EmbeddedServer, history: RestartHistory) -> None:
        super().__init__(server.name, history)
        self.server = server

    def start(self) -> None:
        self.history.started()  # a failed start counts as a run that ended at once
        self.server.restart()

    def exit_code(self) -> int | None:
        return None if self.server.proc is None else self.server.proc.poll()

    @property
    def pid(self) -> int | None:
        return self.server.proc.pid if self.server.proc is not None else None

    def last_lines(self) -> list[str]:
        return [f"(from {self.server.log_path})", *_file_tail(self.server.log_path)]


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
        nats_nodes: int = 1,
    ) -> None:
        self.settings = settings
        self.nats_nodes = nats_nodes
        self.hubs = max(1, hubs)
        self.workers = max(1, workers)
        self.port = port
        self.frontend = frontend
        self.ready_timeout = ready_timeout
        self.state_dir = settings.state_dir.resolve()
        self.policy = RestartPolicy(
            intensity=settings.restart_intensity,
            period_s=settings.restart_period_s,
            backoff_s=settings.restart_backoff_s,
            backoff_max_s=settings.restart_backoff_max_s,
            stable_s=settings.restart_backoff_max_s,
        )
        self.servers: list[EmbeddedServer] = []
        self.children: list[Child] = []
        self.supervised_servers: list[Server] = []
        self.hub_ports: list[int] = []
        self.admin_ports: list[int] = []  # hub i's admin listener: admin_ports[i]
        self.worker_metrics_ports: list[int] = []  # worker i's /metrics, when asked for
        self.nats_env: dict[str, dict[str, str]] = {}  # role → its NATS credentials
        self.urls: dict[str, str] = {}
        self._stopping = False
        self._starting = False  # a signal now raises _Stop (``_on_signal``)
        self._env: dict[str, str] = {}  # the services' URLs, once they are up
        self._state_lock: IO[bytes] | None = None  # held while this run owns the folder
        self._frontend: Path | None = None

    # --- the whole run -------------------------------------------------------------

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            try:
                self._starting = True
                return self._start_and_watch()
            finally:
                self._starting = False  # from here a signal only asks the loop to stop
        except _Stop:
            return STOPPED
        except Exception as exc:
            failure = explain(
                exc,
                database_url=self._env.get("DATABASE_URL", self.settings.database_url),
                nats_url=self._env.get("NATS_URL", self.settings.nats_url),
            )
            log.error("hubbub up failed: %s", exc if failure is None else failure.message)
            return FAILED if failure is None else failure.code
        finally:
            if self.children or self.servers:
                clear_runtime(self.state_dir)
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._state_lock is not None:
                self._state_lock.close()  # the folder is free for the next run

    def _start_and_watch(self) -> int:
        """Start everything, then supervise until a stop (``_watch``)."""
        if not 1 <= self.nats_nodes <= MAX_NATS_NODES:
            raise RuntimeError(f"--nats-nodes is 1 to {MAX_NATS_NODES}")
        if self.nats_nodes > 1 and self.settings.nats_url:
            raise RuntimeError(
                "--nats-nodes starts an embedded NATS cluster, but NATS_URL is set: "
                "unset it, or give your own cluster's servers in it"
            )
        self._state_lock = hold_state_dir(self.state_dir)
        if self._state_lock is None:
            raise RuntimeError(
                f"another `hubbub up` is running on {self.state_dir} (it holds "
                f"{self.state_dir / LOCK_FILE}); stop it first, or give this one its "
                "own HUBBUB_STATE_DIR"
            )
        if self.port is not None:
            self._ports()  # a --port that is taken: said before any server starts
        self._frontend_dir()  # build it first: a failing build stops before anything runs
        env = self._env = self._start_services()
        if self._stopping:
            return STOPPED
        self._migrate(env)
        self.hub_ports = self._ports()
        self.admin_ports = self._admin_ports()
        self.worker_metrics_ports = self._worker_metrics_ports()
        # Recorded as soon as the servers are up and migrated, before the hubs are
        # ready: whoever sees a hub answer /ready can already run `hubbub user create`
        # (the e2e setup does exactly that, racing this process's own ready check).
        self.urls = {k: env[k] for k in ("DATABASE_URL", "NATS_URL", "REDIS_URL")} | {
            "HUB_URLS": ",".join(self._hub_urls()),
            "ADMIN_URLS": ",".join(self._admin_urls()),
        }
        self._write_runtime()
        self._start_processes(env)
        self._write_runtime()
        self._wait_ready()
        self._starting = False
        self._print_banner(env)
        return self._watch()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            log.info("stopping (signal %s)…", signal.Signals(signum).name)
        self._stopping = True
        if self._starting:
            # A step of the start may wait long (a server that does not answer, the
            # frontend's build): it is cut short where it is, and what has started is
            # stopped. (Raised in the main thread, between two of its statements.)
            self._starting = False
            raise _Stop

    def _stop_requested(self) -> bool:
        return self._stopping  # set by the signal handler, between any two statements

    def _check_stop(self) -> None:
        if self._stopping:
            raise _Stop

    def _members(self) -> list[Supervised]:
        return [*self.supervised_servers, *self.children]

    def _write_runtime(self) -> None:
        pids = {m.name: m.pid for m in self._members() if m.exit_code() is None}
        write_runtime(self.state_dir, self.urls, {name: pid for name, pid in pids.items() if pid})

    # --- services ----------------------------------------------------------------------

    def _start_services(self) -> dict[str, str]:
        s = self.settings
        make_state_dir(self.state_dir)
        env = {
            "HUBBUB_SECRET_KEY": s.secret_key or "",
            "HUBBUB_STATE_DIR": str(self.state_dir),
        }
        # The embedded NATS refuses anonymous clients: each role connects as its user.
        nats_auth = NatsAuthFolder.of_state_dir(self.state_dir, s.namespace)
        wanted: list[tuple[str, str | None, EmbeddedServer]] = [
            ("DATABASE_URL", s.database_url, self.embedded_postgres()),
            (
                "NATS_URL",
                s.nats_url,
                EmbeddedNats(self.state_dir / "nats", config=nats_auth.config_path),
            ),
            ("REDIS_URL", s.redis_url, EmbeddedRedis(self.state_dir / "redis")),
        ]
        for var, given, server in wanted:
            self._check_stop()
            if given:
                env[var] = given
                continue
            nodes = [server]
            if isinstance(server, EmbeddedNats):
                nats_auth.ensure()
                self.nats_env = {role: nats_auth.role_env(role) for role in ROLES}
                env.update(self.nats_env["worker"])  # workers, and migrations' streams
                if self.nats_nodes > 1:
                    nodes = list(nats_cluster(self.state_dir, nats_auth, self.nats_nodes))
            urls = []
            for node in nodes:  # each node supervised on its own, like a single server
                self._check_stop()
                log.info("starting embedded %s (data in %s)", node.name, shown(node.data_dir))
                self.servers.append(node)
                urls.append(node.start())
                self.supervised_servers.append(Server(node, RestartHistory(self.policy)))
            # A cluster's servers, comma-separated: every client gets the full list.
            env[var] = ",".join(urls)
        return env

    def embedded_postgres(self) -> EmbeddedPostgres:
        """The embedded PostgreSQL, with room for every worker's connections."""
        return EmbeddedPostgres(
            self.state_dir / "postgres",
            max_connections=postgres_connections(self.settings, self.workers),
        )

    def _migrate(self, env: dict[str, str]) -> None:
        from cli.admin.system import ensure_nats_streams
        from migrations import upgrade_sync

        self._check_stop()
        log.info("applying migrations")
        upgrade_sync(env["DATABASE_URL"])
        settings = self.settings.model_copy(update={"nats_url": env["NATS_URL"]})
        if "NATS_USER" in env:
            settings = settings.model_copy(
                update={"nats_user": env["NATS_USER"], "nats_password": env["NATS_PASSWORD"]}
            )
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

    def _admin_ports(self) -> list[int]:
        """HUBBUB_ADMIN_PORT and the next ones (one per hub) when it is set, else each
        hub's port + ADMIN_PORT_OFFSET; one that is taken: an error if it was set, else
        a free port."""
        host, given = self.settings.admin_host, self.settings.admin_port
        if given:
            wanted = [given + i for i in range(self.hubs)]
        else:
            wanted = [port + ADMIN_PORT_OFFSET for port in self.hub_ports]
        chosen: list[int] = []
        for port in wanted:
            if port <= 65535 and port not in self.hub_ports and port_is_free(port, host):
                chosen.append(port)
            elif given:
                raise RuntimeError(
                    f"admin port {port} is taken: choose others with HUBBUB_ADMIN_PORT"
                )
            else:
                other = free_port(host)
                while other in self.hub_ports or other in chosen:
                    other = free_port(host)
                chosen.append(other)
        return chosen

    def _worker_metrics_ports(self) -> list[int]:
        """With HUBBUB_WORKER_METRICS_PORT set, each worker's /metrics port: that one and
        the next ones (taken: an error); else none. Each worker binds its own."""
        given, host = self.settings.worker_metrics_port, self.settings.admin_host
        if not given:
            return []
        ports = [given + i for i in range(self.workers)]
        for port in ports:
            if (
                port > 65535
                or port in self.hub_ports
                or port in self.admin_ports
                or not port_is_free(port, host)
            ):
                raise RuntimeError(
                    f"worker metrics port {port} is taken: choose others with "
                    "HUBBUB_WORKER_METRICS_PORT"
                )
        return ports

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        child = Child(name, argv, env, RestartHistory(self.policy))
        self.children.append(child)
        child.start()

    def _start_processes(self, env: dict[str, str]) -> None:
        self._check_stop()
        if not self.settings.public_url:
            # Workers write links (password-reset mail) that must reach a hub.
            env["HUBBUB_PUBLIC_URL"] = self._hub_urls()[0]
        for i in range(self.workers):
            # Its own /metrics port, or none: HUBBUB_WORKER_METRICS_PORT as inherited
            # would be every worker's, and all but the first would fail to bind it.
            metrics = self.worker_metrics_ports[i] if self.worker_metrics_ports else 0
            worker_env = {**env, "HUBBUB_WORKER_METRICS_PORT": str(metrics)}
            self._spawn(f"worker-{i + 1}", ["worker"], worker_env)
        hub_env = {**env, **self.nats_env.get("hub", {})}
        frontend_dir = self._frontend_dir()
        if frontend_dir is not None:
            hub_env["HUBBUB_FRONTEND_DIR"] = str(frontend_dir)
        for i, (port, admin) in enumerate(zip(self.hub_ports, self.admin_ports, strict=True)):
            argv = ["serve", "--port", str(port)]
            self._spawn(f"hub-{i + 1}", argv, {**hub_env, "HUBBUB_ADMIN_PORT": str(admin)})

    def _frontend_dir(self) -> Path | None:
        if not self.frontend:
            return None
        if self._frontend is None:
            from cli.frontend import ensure_built

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
        """While starting, a child that exits is not restarted: what made it fail (a
        setting, a port) would make it fail again."""
        for child in self.children:
            code = child.exit_code()
            if code is not None:
                raise RuntimeError(
                    f"{child.name} {describe_exit(code)} while starting; stopping everything"
                    + _quoted(child.last_lines())
                )

    def _hub_urls(self) -> list[str]:
        return [f"http://{self.settings.host}:{port}" for port in self.hub_ports]

    def _admin_urls(self) -> list[str]:
        return [f"http://{self.settings.admin_host}:{port}" for port in self.admin_ports]

    def _print_banner(self, env: dict[str, str]) -> None:
        host = self.settings.host
        lines = ["", "Hubbub is up."]
        for port, admin in zip(self.hub_ports, self._admin_urls(), strict=True):
            base = f"http://{host}:{port}"
            if self._frontend_dir() is not None:
                lines.append(f"  app        {base}/")
            lines.append(f"  API        {base}/api/v1   (ready: {base}/api/v1/ready)")
            lines.append(f"  WebSocket  ws://{host}:{port}/ws")
            lines.append(f"  admin      {admin}/metrics   (details: {admin}/ready)")
        embedded = {s.name: s for s in self.servers}
        nats_nodes = [s for s in self.servers if isinstance(s, EmbeddedNats)]
        for label, var, name in (
            ("PostgreSQL", "DATABASE_URL", "postgres"),
            ("NATS", "NATS_URL", "nats"),
            ("Redis", "REDIS_URL", "redis"),
        ):
            if name == "nats" and len(nats_nodes) > 1:
                folders = ", ".join(shown(node.data_dir) for node in nats_nodes)
                origin = f"embedded cluster of {len(nats_nodes)} nodes, data in {folders}"
            elif name in embedded:
                origin = f"embedded, data in {shown(embedded[name].data_dir)}"
            else:
                origin = "from " + var
            lines.append(f"  {label:<10} {redact(env[var])}   ({origin})")
        workers = f"  workers    {self.workers}"
        if self.worker_metrics_ports:
            host = self.settings.admin_host
            workers += (
                "   (/metrics on "
                + ", ".join(f"{host}:{port}" for port in self.worker_metrics_ports)
                + ")"
            )
        lines.append(workers)
        lines.append("Press Ctrl-C to stop.")
        print("\n".join(lines), flush=True)

    # --- supervision -------------------------------------------------------------------

    def _watch(self) -> int:
        """Until a stop: start again what exited, once its backoff is over."""
        while not self._stop_requested():
            for member in self._members():
                if self._stop_requested():  # a stop during a backoff starts nothing
                    break
                if member.restart_at is None:
                    code = member.exit_code()
                    if code is not None and not self._exited(member, describe_exit(code)):
                        return 1
                elif time.monotonic() >= member.restart_at:
                    member.restart_at = None
                    try:
                        member.start()
                    except Exception as exc:
                        if not self._exited(member, f"could not start again: {exc}"):
                            return 1
                    self._write_runtime()
            time.sleep(0.1)
        return 0

    def _exited(self, member: Supervised, how: str) -> bool:
        """Schedule the restart of a process that ended; False: giving up instead."""
        decision = member.history.exited()
        if isinstance(decision, GiveUp):
            log.error(
                "%s %s after %d restarts within %gs (HUBBUB_RESTART_INTENSITY=%d): "
                "stopping everything%s",
                member.name,
                how,
                decision.restarts,
                decision.period_s,
                self.policy.intensity,
                _quoted(member.last_lines()),
            )
            return False
        assert isinstance(decision, Restart)
        log.warning("%s %s; restart %d in %gs", member.name, how, decision.number, decision.delay_s)
        member.restart_at = decision.at
        self._write_runtime()
        return True

    # --- stopping ----------------------------------------------------------------------

    def _shutdown(self) -> None:
        hubs = [c for c in self.children if c.is_hub]
        workers = [c for c in self.children if not c.is_hub]
        for group, grace in (
            (hubs, self.settings.shutdown_timeout_s + STOP_GRACE_S),
            (workers, self.settings.drain_timeout_s + STOP_GRACE_S),
        ):
            for child in group:
                if child.proc is not None and child.proc.poll() is None:
                    child.proc.send_signal(signal.SIGTERM)
            for child in group:  # signalled once: a second SIGTERM ends a drain early
                if child.proc is not None:
                    wait_or_kill(child.proc, grace)
        for child in self.children:  # their last words, echoed before we exit
            if child.tail is not None:
                child.tail.lines(wait=1.0)
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception:
                log.exception("stopping embedded %s failed", server.name)
        if self.children or self.servers:
            log.info("stopped")


class _Stop(BaseException):
    """A stop that came while ``hubbub up`` started (``_on_signal``). Not an
    ``Exception``: the code it interrupts (alembic, SQLAlchemy, asyncio's tasks) may catch
    every ``Exception`` and would take it for an error of its own and go on."""


def shown(path: Path) -> str:
    """``path`` as ``hubbub up`` prints it: relative to the working directory when it is
    inside it (the default state folder: ``.hubbub/postgres``), else absolute."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def worker_count(value: str) -> int:
    """``hubbub up --workers``: a positive number, or ``auto`` — one worker process per CPU
    this process may run on. A worker is one event loop (one core at most), and a request
    costs a worker more CPU than the hub, so on a machine of its own one per CPU keeps
    every core busy."""
    if value == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    # argparse shows an ArgumentTypeError's own words (a ValueError only as "invalid").
    try:
        count = int(value)
    except ValueError:
        raise ArgumentTypeError(f"--workers takes a number or 'auto', not {value!r}") from None
    if count < 1:
        raise ArgumentTypeError("--workers takes a number of at least 1, or 'auto'")
    return count


def postgres_connections(settings: Settings, workers: int) -> int:
    """The embedded PostgreSQL's ``max_connections`` under ``workers`` workers: each holds
    up to its pool, overflow and read pool, and one of the outbox relay's own; then
    ``COMMAND_CONNECTIONS`` for the commands run beside them (one each) and PostgreSQL's
    reserved ones. At least 200."""
    per_worker = settings.db_pool_size + settings.db_max_overflow + settings.db_read_pool_size + 1
    return max(200, workers * per_worker + COMMAND_CONNECTIONS)


def describe_exit(code: int) -> str:
    """``exited with code 1`` or ``was killed by SIGKILL``, from a Popen return code."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def _our_output() -> IO[bytes] | None:
    """Where the children's output goes on: our standard error (it is their logs)."""
    return getattr(sys.stderr, "buffer", None)


def _quoted(lines: list[str]) -> str:
    if not lines:
        return " (it wrote nothing)"
    return ". Its last lines:\n" + "\n".join("  | " + line for line in lines)


def _file_tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = 16_384) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
            data = f.read()
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-lines:]
