"""Who may do what on NATS: the users of each role, their permissions, as a server config.

``hubbub up`` (and compose's one-shot ``nats-auth`` service) keeps a folder of
credentials — ``.hubbub/nats-auth/`` — generated once and reused:

* ``hub.password``, ``worker.password``: the passwords of the users ``hub`` and
  ``worker`` (mode 0600);
* ``services.json``: the backend services' users (``hubbub service create``), each with
  the channels it may publish to;
* ``nats.conf``: the ``accounts`` block nats-server loads (``-c``), rendered from
  the above. No anonymous user exists in it, so a client without credentials is refused;
* ``route.password``: what the nodes of a NATS cluster log in to each other's route port
  with (a route is trusted with everything, so it needs a password of its own);
* ``nats-<n>.conf``: node *n* of ``hubbub up --nats-nodes N``: its name, its cluster
  block (routes to the others, on 127.0.0.1) and ``include nats.conf``;
* ``compose-nats.conf``: compose's single server: ``include nats.conf`` and the
  monitoring port, on the container's loopback only (its health check asks there);
* ``compose-cluster-nats.conf``: the same for the nodes of compose's ``cluster`` profile,
  with their cluster block (``hubbub nats-auth`` writes both; each node gets its name on
  its command line).

Permissions are the server's to enforce (docs/architecture.md, "Who may do what on
NATS"). Hubs and workers are in the account ``HUBBUB``, which holds JetStream; what each
may do with it is limited by which ``$JS.API`` subjects it may publish to. The services
are in an account of their own, ``SERVICES``, which imports ``evt.>`` from ``HUBBUB`` as
a service: a publication reaches the channel streams, and the stream's ack comes back to
the reply subject the service named *in its own account*. JetStream sends an ack wherever
a publication's reply subject says, and the server checks no permission for it; in one
account a service could aim it at ``ctl.>``, a hub's reply inbox or ``svc.>``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from cli.runtime import kept_password, write_private
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.subjects import WORKER_QUEUE
from hubbub.natsauth import HUB_INBOX_PREFIX, SERVICE_INBOX_PREFIX

ROLES = ("hub", "worker")
FOLDER = "nats-auth"
CONFIG = "nats.conf"
SERVICES = "services.json"
ROUTE_USER = "route"
MAIN_ACCOUNT = "HUBBUB"  # hubs, workers and JetStream
SERVICE_ACCOUNT = "SERVICES"  # the backend services: nothing of HUBBUB's but evt.>
CLUSTER_NAME = "hubbub"
COMPOSE_SINGLE = "compose-nats.conf"
COMPOSE_CLUSTER = "compose-cluster-nats.conf"
# /connz lists every user, address and subscription: inside the container only.
COMPOSE_MONITOR = 'http: "127.0.0.1:8222"\n'
COMPOSE_NODES = ("nats", "nats-2", "nats-3")  # docker-compose.yml's services

_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
_PATTERN = re.compile(r"([a-z]+):(\*|[A-Za-z0-9_-]{1,64})")


class NatsAuthError(ValueError):
    """A service name or channel pattern is not acceptable; the message says why."""


@dataclass(frozen=True)
class ServiceUser:
    name: str
    channels: list[str]
    password: str
    created_at: str

    @property
    def user(self) -> str:
        return f"svc-{self.name}"

    @property
    def inbox_prefix(self) -> str:
        return f"{SERVICE_INBOX_PREFIX}.{self.name}"


def check_service_name(name: str) -> str:
    if not _SERVICE_NAME.fullmatch(name):
        raise NatsAuthError(
            f"{name!r} is not a service name: 1-48 of a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    return name


def channel_subject(pattern: str, namespace: str = "") -> str:
    """``public:*`` → ``evt.public.>``; ``ticker:prices`` → ``evt.ticker.prices``."""
    match = _PATTERN.fullmatch(pattern)
    kinds = {kind.value for kind in ChannelKind}
    if match is None or match[1] not in kinds:
        raise NatsAuthError(
            f"{pattern!r} is not a channel pattern: <kind>:<name> or <kind>:*, "
            f"with kind one of {', '.join(sorted(kinds))}"
        )
    prefix = f"{namespace}." if namespace else ""
    return f"{prefix}evt.{match[1]}.{'>' if match[2] == '*' else match[2]}"


def role_permissions(role: str, namespace: str = "") -> dict[str, object]:
    """The permissions of a hub or worker user, as nats-server's config takes them."""
    p = f"{namespace}." if namespace else ""
    if role == "hub":
        return {
            "publish": {
                "allow": [
                    f"{p}svc.>",  # requests to the workers
                    f"{p}evt.>",  # the publish API and WS publications (through JetStream)
                    f"{p}presence.>",
                    "$JS.API.INFO",
                    "$JS.API.STREAM.INFO.>",
                    "$JS.API.DIRECT.GET.>",  # channel history and recovery
                    "$JS.API.STREAM.MSG.GET.>",
                ]
            },
            "subscribe": {
                "allow": [
                    f"{p}live.>",
                    f"{p}ctl.>",
                    f"{p}presence.>",
                    f"{HUB_INBOX_PREFIX}.>",  # replies: only on the hubs' own inboxes
                ]
            },
        }
    if role == "worker":
        return {
            "publish": {"allow": [f"{p}svc.>", f"{p}evt.>", f"{p}ctl.>", "$JS.API.>", "$JS.ACK.>"]},
            # Replies go to the reply subject of a request the worker received, once.
            "allow_responses": {"max": 1},
            "subscribe": {"allow": [f"{p}svc.> {WORKER_QUEUE}", "_INBOX.>"]},
        }
    raise ValueError(f"unknown role {role!r}")


def service_permissions(service: ServiceUser, namespace: str = "") -> dict[str, object]:
    """A backend service: publish to its channels (JetStream acks come to its own inbox)."""
    return {
        "publish": {"allow": [channel_subject(c, namespace) for c in service.channels]},
        "subscribe": {"allow": [f"{service.inbox_prefix}.>"]},
    }


class NatsAuthFolder:
    """The credentials folder and the server config rendered from it."""

    def __init__(self, folder: Path, namespace: str = "") -> None:
        self.folder = folder
        self.namespace = namespace

    @classmethod
    def of_state_dir(cls, state_dir: Path, namespace: str = "") -> NatsAuthFolder:
        return cls(state_dir / FOLDER, namespace)

    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG

    def ensure(self) -> Path:
        """Generate what is missing (role passwords are made once), write the config."""
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        for user in (*ROLES, ROUTE_USER):
            kept_password(self.folder / f"{user}.password")
        self.write_config()
        return self.config_path

    def password(self, role: str) -> str:
        return (self.folder / f"{role}.password").read_text().strip()

    def copy_password(self, role: str, folder: Path) -> Path:
        """``<folder>/<role>.password``: for a container that gets its own role's only."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{role}.password"
        write_private(path, self.password(role) + "\n")
        return path

    def role_env(self, role: str) -> dict[str, str]:
        """The settings a process of this role connects with."""
        return {"NATS_USER": role, "NATS_PASSWORD": self.password(role)}

    # --- services ------------------------------------------------------------------------

    def services(self) -> list[ServiceUser]:
        path = self.folder / SERVICES
        if not path.exists():
            return []
        return [ServiceUser(**entry) for entry in orjson.loads(path.read_bytes())]

    def add_service(self, name: str, channels: list[str]) -> ServiceUser:
        check_service_name(name)
        if not channels:
            raise NatsAuthError("a service needs at least one channel, like public:* ")
        for pattern in channels:
            channel_subject(pattern)
        current = self.services()
        if any(s.name == name for s in current):
            raise NatsAuthError(f"a service named {name!r} exists; revoke it first")
        service = ServiceUser(
            name=name,
            channels=list(dict.fromkeys(channels)),
            password=secrets.token_urlsafe(32),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._save_services([*current, service])
        return service

    def revoke_service(self, name: str) -> bool:
        current = self.services()
        kept = [s for s in current if s.name != name]
        if len(kept) == len(current):
            return False
        self._save_services(kept)
        return True

    def _save_services(self, services: list[ServiceUser]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps([asdict(s) for s in services], option=orjson.OPT_INDENT_2)
        write_private(self.folder / SERVICES, data.decode() + "\n")
        self.write_config()

    # --- the server config -------------------------------------------------------------

    def render(self) -> str:
        """Two accounts: ``HUBBUB`` (hubs, workers, JetStream) exports the publications'
        subjects as a service, which ``SERVICES`` imports. The services' account is there
        even with no service, so a reload adds or removes users only: nats-server 2.15
        does not wire the import of an account that a reload adds."""
        events = f"{self.namespace}.evt.>" if self.namespace else "evt.>"
        roles = [
            {
                "user": role,
                "password": self.password(role),
                "permissions": role_permissions(role, self.namespace),
            }
            for role in ROLES
        ]
        services = [
            {
                "user": s.user,
                "password": s.password,
                "permissions": service_permissions(s, self.namespace),
            }
            for s in self.services()
        ]
        accounts = {
            MAIN_ACCOUNT: {
                "jetstream": "enabled",
                "users": roles,
                "exports": [{"service": events}],
            },
            SERVICE_ACCOUNT: {
                "users": services,
                "imports": [{"service": {"account": MAIN_ACCOUNT, "subject": events}}],
            },
        }
        # nats-server's config format reads JSON; generated, never edited by hand.
        body = orjson.dumps(accounts, option=orjson.OPT_INDENT_2).decode()
        return (
            "# Generated by hubbub (cli/embedded/nats_auth.py) from the files beside it;\n"
            "# `hubbub service create/revoke` rewrites it. Do not edit.\n"
            f"accounts {body}\n"
        )

    def write_config(self) -> None:
        write_private(self.config_path, self.render())

    # --- a cluster node's config ---------------------------------------------------------

    def render_node(
        self,
        server_name: str | None,
        *,
        listen: str,
        routes: list[str],
        cluster_name: str = CLUSTER_NAME,
    ) -> str:
        """A cluster node: its JetStream name (None: given on the command line), its route
        port (``listen``, host:port) that only the route user may log in to, the routes
        (host:port) it solicits — its own may be among them, and is skipped — and the
        users of ``nats.conf`` (included, so a reload reads them again)."""
        password = self.password(ROUTE_USER)
        cluster = {
            "name": cluster_name,
            "listen": listen,
            "authorization": {"user": ROUTE_USER, "password": password},
            "routes": [f"nats-route://{ROUTE_USER}:{password}@{route}" for route in routes],
        }
        body = orjson.dumps(cluster, option=orjson.OPT_INDENT_2).decode()
        name = f"server_name: {orjson.dumps(server_name).decode()}\n" if server_name else ""
        return (
            "# Generated by hubbub (cli/embedded/nats_auth.py). Do not edit.\n"
            f"{name}include {CONFIG}\n"
            f"cluster {body}\n"
        )

    def write_node(
        self, server_name: str, *, listen: str, routes: list[str], cluster_name: str = CLUSTER_NAME
    ) -> Path:
        """``<server_name>.conf``: a node of ``hubbub up --nats-nodes N``."""
        path = self.folder / f"{server_name}.conf"
        text = self.render_node(
            server_name, listen=listen, routes=routes, cluster_name=cluster_name
        )
        write_private(path, text)
        return path

    def write_compose_single(self) -> Path:
        """``compose-nats.conf``: compose's single server, monitoring on its loopback."""
        path = self.folder / COMPOSE_SINGLE
        header = "# Generated by hubbub (cli/embedded/nats_auth.py). Do not edit.\n"
        write_private(path, f"{header}include {CONFIG}\n{COMPOSE_MONITOR}")
        return path

    def write_compose_cluster(self, hosts: tuple[str, ...] = COMPOSE_NODES) -> Path:
        """``compose-cluster-nats.conf``: the config every node of compose's ``cluster``
        profile loads (each gets its name with ``--name``); routes to all of them, on
        6222; monitoring on the node's loopback."""
        path = self.folder / COMPOSE_CLUSTER
        text = self.render_node(
            None, listen="0.0.0.0:6222", routes=[f"{host}:6222" for host in hosts]
        )
        write_private(path, text + COMPOSE_MONITOR)
        return path


def reload_server(pid: int) -> bool:
    """Make a running nats-server read its config again (SIGHUP); False: none runs."""
    try:
        os.kill(pid, signal.SIGHUP)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def embedded_role_credentials(state_dir: Path, role: str) -> dict[str, str]:
    """``nats_user``/``nats_password`` of a role of the embedded NATS, if it has them."""
    folder = NatsAuthFolder.of_state_dir(state_dir)
    with contextlib.suppress(OSError):
        return {"nats_user": role, "nats_password": folder.password(role)}
    return {}
