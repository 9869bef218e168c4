"""The container and deploy/ files stay valid, checked without a Docker engine: the
compose file (`docker-compose config`), the Dockerfiles (hadolint), the nginx config
(`nginx -t`), Prometheus's config, alerts and alert tests (`promtool`), Alertmanager's
config (`amtool`) and the Grafana dashboards. nginx, promtool and amtool are Debian's
(scripts/ensure-debian-packages installs them); a missing one fails its test."""

from __future__ import annotations

import io
import ipaddress
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import orjson
import pytest
import yaml
from aiohttp.test_utils import make_mocked_request
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError
from redis.retry import Retry

from cli.admin.services import prepare_nats_auth
from cli.embedded.nats_auth import COMPOSE_NODES, NatsAuthFolder
from cli.embedded.process import free_port, wait_for_port
from cli.embedded.servers import EmbeddedNats, EmbeddedRedis
from cli.supervisor import STOP_GRACE_S
from hub.client_ip import ClientIp
from hubbub.config import Settings
from tests.support import deploy
from workers.app import AFTER_DRAIN_S

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The workers' alerts and their cases, beside the hubs' (tests/support/deploy.py).
WORKER_ALERTS_YML = deploy.ALERTS_YML.parent / "worker-alerts.yml"
WORKER_ALERTS_TEST_YML = deploy.ALERTS_YML.parent / "worker-alerts.test.yml"
RULE_FILES = (
    (deploy.ALERTS_YML, deploy.ALERTS_TEST_YML),
    (WORKER_ALERTS_YML, WORKER_ALERTS_TEST_YML),
)


def rules_of(path: Path) -> list[dict[str, Any]]:
    return [
        rule
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def prepare_nats_auth_in(folder: NatsAuthFolder, *role_dirs: str) -> None:
    """What the one-shot ``hubbub nats-auth --role-dir ROLE=FOLDER…`` writes."""
    settings = Settings(state_dir=folder.folder.parent)
    assert prepare_nats_auth(settings, role_dirs, out=io.StringIO()) == 0


def compose_services(**env: str) -> dict[str, Any]:
    """The services of ``docker-compose config`` (as JSON), in this environment."""
    environment = {k: v for k, v in os.environ.items() if k != "COMPOSE_PROFILES"}
    result = subprocess.run(
        [BIN / "docker-compose", "-f", ROOT / "docker-compose.yml", "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={**environment, "HUBBUB_SECRET_KEY": "x" * 40, **env},
        check=True,
    )
    services: dict[str, Any] = orjson.loads(result.stdout)["services"]
    return services


class TestCompose:
    def test_the_compose_file_is_valid(self) -> None:
        env = {**os.environ, "HUBBUB_SECRET_KEY": "x" * 40}
        result = subprocess.run(
            [BIN / "docker-compose", "-f", ROOT / "docker-compose.yml", "config", "--services"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert sorted(result.stdout.split()) == [
            "alertmanager",
            "grafana",
            "hub",
            "migrate",
            "nats",
            "nats-auth",
            "nginx",
            "passwords",
            "postgres",
            "prometheus",
            "redis",
            "worker",
        ]

    def test_nats_runs_with_the_generated_auth_and_each_role_connects_as_itself(self) -> None:
        """The one-shot nats-auth writes the config NATS loads; hub and worker log in."""
        env = {**os.environ, "HUBBUB_SECRET_KEY": "x" * 40}
        result = subprocess.run(
            [
                BIN / "docker-compose",
                "-f",
                ROOT / "docker-compose.yml",
                "config",
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        services = orjson.loads(result.stdout)["services"]
        nats = services["nats"]
        assert nats["command"][:2] == ["-c", "/auth/compose-nats.conf"]
        assert nats["depends_on"]["nats-auth"]["condition"] == "service_completed_successfully"
        assert "nats-auth" in services["nats-auth"]["command"][-1]
        for role in ("hub", "worker", "migrate"):
            environment = services[role]["environment"]
            user = "hub" if role == "hub" else "worker"
            assert environment["NATS_USER"] == user
            assert environment["NATS_PASSWORD_FILE"] == f"/auth/{user}.password"

    def test_the_cluster_profile_runs_three_nats_nodes_that_every_process_connects_to(
        self,
    ) -> None:
        """COMPOSE_PROFILES=cluster: nats, nats-2 and nats-3 share the generated cluster
        config (routes, route password, users), each under its own JetStream name and
        store; hub, worker and migrate get all three servers, once all three are up."""
        services = compose_services(COMPOSE_PROFILES="cluster")
        nodes = {"nats": "nats-1", "nats-2": "nats-2", "nats-3": "nats-3"}
        stores = set()
        for service, name in nodes.items():
            command = services[service]["command"]
            assert command[:2] == ["-c", "/auth/compose-cluster-nats.conf"]
            assert command[command.index("--name") + 1] == name
            assert "-js" in command
            assert "/auth" in [v["target"] for v in services[service]["volumes"]]
            data = next(v for v in services[service]["volumes"] if v["target"] == "/data")
            stores.add((data["source"], command[command.index("-sd") + 1]))
            depends = services[service]["depends_on"]["nats-auth"]["condition"]
            assert depends == "service_completed_successfully"
        assert len(stores) == 3
        # Kept apart from the single server's store, whose streams a cluster would delete.
        assert ("nats-data", "/data/cluster") in stores
        everything = "nats://nats:4222,nats://nats-2:4222,nats://nats-3:4222"
        for role in ("hub", "worker", "migrate"):
            assert services[role]["environment"]["NATS_URL"] == everything
        for node in nodes:  # the worker and the hub wait for migrate, which waits for them
            assert services["migrate"]["depends_on"][node]["condition"] == "service_healthy"

    def test_the_cluster_config_is_valid_and_routes_to_the_compose_nodes(
        self, tmp_path: Path
    ) -> None:
        """What `hubbub nats-auth` writes for the cluster profile: nats-server accepts it;
        its routes (logging in as the route user) go to the file's three NATS services."""
        folder = NatsAuthFolder(tmp_path / "nats-auth")
        folder.ensure()
        config = folder.write_compose_cluster()
        check = subprocess.run(
            [EmbeddedNats.binary(), "-c", config, "-t", "--name", "nats-1", "-js"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        text = config.read_text()
        password = folder.password("route")
        for node in COMPOSE_NODES:
            assert f"nats-route://route:{password}@{node}:6222" in text
        assert set(COMPOSE_NODES) <= set(compose_services(COMPOSE_PROFILES="cluster"))

    def test_without_the_profile_nats_is_one_server(self) -> None:
        services = compose_services()
        assert "nats-2" not in services
        assert "nats-3" not in services
        command = services["nats"]["command"]
        assert command[:2] == ["-c", "/auth/compose-nats.conf"]
        assert command[command.index("-sd") + 1] == "/data"
        for role in ("hub", "worker", "migrate"):
            assert services[role]["environment"]["NATS_URL"] == "nats://nats:4222"

    def test_the_compose_file_refuses_to_run_without_a_secret(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "HUBBUB_SECRET_KEY"}
        result = subprocess.run(
            [BIN / "docker-compose", "-f", ROOT / "docker-compose.yml", "config"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd="/",
        )
        assert result.returncode != 0
        assert "set HUBBUB_SECRET_KEY" in result.stderr


class TestDockerfile:
    def test_hadolint_finds_nothing(self) -> None:
        result = subprocess.run(
            [BIN / "hadolint", ROOT / "Dockerfile"], capture_output=True, text=True, check=False
        )
        assert (result.returncode, result.stdout) == (0, "")

    def test_the_image_runs_as_a_non_root_user(self) -> None:
        lines = (ROOT / "Dockerfile").read_text().splitlines()
        assert [line for line in lines if line.startswith("USER ")][-1] == "USER 10001:10001"


JSON = ("--format", "json")


class TestProductionStack:
    """docker-compose.yml as deploy/ expects it: nginx the only way in, in front of two
    hubs that believe its X-Forwarded-For; two workers; Prometheus, Alertmanager and
    Grafana on the host's loopback only, each reading its files from deploy/."""

    def test_nginx_in_front_of_two_hubs_and_two_workers(self) -> None:
        services = compose_services()
        assert services["hub"]["deploy"]["replicas"] == 2
        assert services["worker"]["deploy"]["replicas"] == 2
        assert "ports" not in services["hub"]
        nginx = services["nginx"]
        assert [(p["published"], p["target"]) for p in nginx["ports"]] == [("8080", 80)]
        assert nginx["depends_on"]["hub"]["condition"] == "service_healthy"
        mounts = {m["target"]: Path(m["source"]) for m in nginx["volumes"]}
        assert mounts == {"/etc/nginx/nginx.conf": deploy.NGINX_CONF}
        assert Path(nginx["build"]["context"]) == deploy.NGINX_CONF.parent

    def test_the_hubs_trust_forwarded_addresses_only_from_nginx(self) -> None:
        """Not from the whole edge network: connections Docker's port forwarding
        (docker-proxy) hands to nginx come from the network's gateway, so a gateway the
        hubs trusted would let any client name its own address in X-Forwarded-For."""
        compose = orjson.loads(
            subprocess.run(
                [BIN / "docker-compose", "-f", ROOT / "docker-compose.yml", "config", *JSON],
                capture_output=True,
                env={**os.environ, "HUBBUB_SECRET_KEY": "x" * 40},
                check=True,
            ).stdout
        )
        (subnet,) = compose["networks"]["edge"]["ipam"]["config"]
        network = ipaddress.ip_network(subnet["subnet"])
        services = compose["services"]
        assert set(services["nginx"]["networks"]) == {"edge"}
        nginx = services["nginx"]["networks"]["edge"]["ipv4_address"]
        assert ipaddress.ip_address(nginx) in network
        # The hubs start first: the addresses Docker picks for them leave nginx's free.
        assert ipaddress.ip_address(nginx) not in ipaddress.ip_network(subnet["ip_range"])
        trusted = services["hub"]["environment"]["HUBBUB_TRUSTED_PROXIES"]
        assert trusted == f"{nginx}/32"
        # What nginx sends a hub for a client that came through the gateway, having
        # written X-Forwarded-For itself: the gateway is the client, not the claim.
        gateway = str(next(network.hosts()))
        forwarded = make_mocked_request(
            "GET", "/", headers={"X-Forwarded-For": f"203.0.113.7, {gateway}"}
        )
        with mock.patch.object(type(forwarded), "remote", nginx):
            assert ClientIp.trusting(trusted.split(",")).of(forwarded) == gateway
        on_edge = {name for name, s in services.items() if "edge" in s.get("networks", {})}
        assert on_edge == {"nginx", "hub"}

    def test_monitoring_listens_on_the_hosts_loopback_with_deploy_files(self) -> None:
        services = compose_services()
        expected = {
            "prometheus": ("9090", {"/etc/prometheus": deploy.PROMETHEUS_YML.parent}),
            "alertmanager": ("9093", {"/etc/alertmanager": deploy.ALERTMANAGER_YML.parent}),
            "grafana": (
                "3000",
                {
                    "/etc/grafana/provisioning": deploy.GRAFANA / "provisioning",
                    "/etc/grafana/dashboards": deploy.DASHBOARDS,
                },
            ),
        }
        for name, (port, files) in expected.items():
            service = services[name]
            assert ":" in service["image"]  # pinned by tag
            assert [(p["host_ip"], p["published"]) for p in service["ports"]] == [
                ("127.0.0.1", port)
            ]
            binds = {
                m["target"]: Path(m["source"]) for m in service["volumes"] if m["type"] == "bind"
            }
            assert binds == files, name

    @pytest.mark.parametrize("profiles", ["", "cluster"])
    def test_nats_monitoring_listens_only_inside_its_container(
        self, tmp_path: Path, profiles: str
    ) -> None:
        """/connz lists every user, address and subscription (a hub's reply inbox among
        them): each node serves it on its own loopback, where its health check asks."""
        services = compose_services(COMPOSE_PROFILES=profiles)
        nodes = ("nats", "nats-2", "nats-3") if profiles else ("nats",)
        for name in nodes:  # not on every address of the container, as -m would
            command = services[name]["command"]
            assert "-m" not in command, name
            assert "--http_port" not in command, name
        folder = NatsAuthFolder(tmp_path / "nats-auth")
        prepare_nats_auth_in(folder)
        for name in nodes:
            command = services[name]["command"]
            config = folder.folder / Path(command[command.index("-c") + 1]).name
            check = _run([str(EmbeddedNats.binary()), "-c", str(config), "-t", "-js"])
            assert check.returncode == 0, check.stdout + check.stderr
            assert 'http: "127.0.0.1:8222"' in config.read_text(), name
            health = " ".join(services[name]["healthcheck"]["test"])
            assert "http://127.0.0.1:8222/healthz" in health

    @pytest.mark.parametrize("role", ["hub", "worker", "migrate"])
    def test_each_process_can_read_only_its_own_nats_password(
        self, tmp_path: Path, role: str
    ) -> None:
        """A compromised hub must not log in as the worker (streams, control) or as the
        route user: each container mounts a volume that holds its role's password only,
        which the one-shot nats-auth fills; the rest stays with nats-auth and NATS."""
        services = compose_services(COMPOSE_PROFILES="cluster")
        user = "hub" if role == "hub" else "worker"
        mounts = _mounts(services[role])
        # NATS's: at /auth; beside it only the volumes of generated passwords
        # (TestGeneratedPasswords).
        (volume,) = {v for v, target in mounts.items() if target == "/auth"}
        assert set(mounts) - {volume} <= set(PASSWORD_VOLUMES)
        assert volume != "nats-auth"
        # Where nats-auth mounts that volume, it puts the role's password and nothing else.
        auth = services["nats-auth"]
        target = next(m["target"] for m in auth["volumes"] if m["source"] == volume)
        assert f"--role-dir {user}={target}" in auth["command"][-1]
        folder = NatsAuthFolder(tmp_path / "nats-auth")
        role_dir = tmp_path / "role"
        prepare_nats_auth_in(folder, f"{user}={role_dir}")
        assert [p.name for p in role_dir.iterdir()] == [f"{user}.password"]
        assert (role_dir / f"{user}.password").read_text().strip() == folder.password(user)
        assert services[role]["environment"]["NATS_PASSWORD_FILE"] == f"/auth/{user}.password"
        # The hubs never open the database: they get no credential for it.
        assert ("DATABASE_URL" in services[role]["environment"]) == (role != "hub")


# What an operator sets in .env (or the shell) for the hubs and workers, as a browser
# and a mail server need them, with values other than the defaults.
OPERATOR_SETTINGS = {
    "HUBBUB_PUBLIC_URL": "https://hub.example.com",
    "HUBBUB_COOKIE_SECURE": "false",
    "HUBBUB_CORS_ORIGINS": "https://app.example.com,https://admin.example.com",
}
MAIL_SETTINGS = {
    "HUBBUB_SMTP_HOST": "smtp.example.com",
    "HUBBUB_SMTP_PORT": "465",
    "HUBBUB_SMTP_USERNAME": "hubbub",
    "HUBBUB_SMTP_PASSWORD": "smtp-secret",
    "HUBBUB_SMTP_TLS": "ssl",
    "HUBBUB_SMTP_TIMEOUT_S": "20",
    "HUBBUB_MAIL_FROM": "Hubbub <no-reply@example.com>",
}


def settings_in(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a container of ``service`` loads from its environment."""
    for name in list(os.environ):
        if name.startswith("HUBBUB_"):
            monkeypatch.delenv(name)
    for name, value in service["environment"].items():
        if value is not None and not name.endswith("_FILE"):  # files: not on this host
            monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


class TestOperatorSettings:
    """The settings a deployment must be able to give its hubs and workers pass from
    .env or the shell through compose; unset, each keeps hubbub/config.py's default."""

    def test_what_the_operator_sets_reaches_the_hubs_and_workers(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        services = compose_services(**OPERATOR_SETTINGS, **MAIL_SETTINGS)
        for role in ("hub", "worker"):
            loaded = settings_in(services[role], monkeypatch)
            assert loaded.public_url == "https://hub.example.com", role
            assert loaded.base_url == "https://hub.example.com"  # mail links start so
            assert loaded.cookie_secure is False
            assert loaded.cors_origins == ["https://app.example.com", "https://admin.example.com"]
        worker = settings_in(services["worker"], monkeypatch)
        assert (worker.smtp_host, worker.smtp_port, worker.smtp_tls) == (
            "smtp.example.com",
            465,
            "ssl",
        )
        assert (worker.smtp_username, worker.smtp_password) == ("hubbub", "smtp-secret")
        assert (worker.smtp_timeout_s, worker.mail_from) == (20, "Hubbub <no-reply@example.com>")
        # The hubs send no mail: they get no SMTP credential.
        assert not {n for n in services["hub"]["environment"] if n.startswith("HUBBUB_SMTP")}

    def test_unset_they_keep_their_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in (*OPERATOR_SETTINGS, *MAIL_SETTINGS):
            monkeypatch.delenv(name, raising=False)
        services = compose_services()
        defaults = Settings(_env_file=None)  # type: ignore[call-arg]
        for role in ("hub", "worker"):
            loaded = settings_in(services[role], monkeypatch)
            for field in ("public_url", "cookie_secure", "cors_origins", "smtp_host"):
                assert getattr(loaded, field) == getattr(defaults, field), (role, field)
            assert (loaded.smtp_port, loaded.mail_from) == (defaults.smtp_port, defaults.mail_from)


class TestDatabaseConnections:
    def test_postgresql_takes_the_connections_of_the_workers_compose_runs_and_more(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each worker may hold its pool, overflow and read pool and its outbox relay's
        own connection (25 by default): the server's max_connections (PostgreSQL's
        default: 100) is the embedded one's, room for 7 workers and 25 connections of
        the operator's (docs/operations.md, "Scale")."""
        services = compose_services()
        command = services["postgres"]["command"]
        assert command[0] == "postgres"
        settings = [command[i + 1] for i, word in enumerate(command) if word == "-c"]
        (limit,) = [int(s.partition("=")[2]) for s in settings if s.startswith("max_connections=")]
        worker = settings_in(services["worker"], monkeypatch)
        relay = 1  # workers/relay.py keeps a connection outside the pools
        pools = worker.db_pool_size + worker.db_max_overflow + worker.db_read_pool_size
        per_worker = pools + relay
        assert per_worker == 25
        assert limit == 200  # as cli/embedded/servers.py starts the embedded one
        assert services["worker"]["deploy"]["replicas"] * per_worker <= limit
        assert 7 * per_worker + 25 <= limit


def seconds(duration: str) -> float:
    """A compose duration (``20s``, ``1m30s``) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert duration, "no duration"
    assert parts is not None, duration
    return 60 * float(parts[1] or 0) + float(parts[2] or 0)


class TestStopping:
    """`docker compose stop`/`down`/`up` of a new image send SIGTERM, then SIGKILL after
    the service's stop_grace_period (Docker's default: 10 s)."""

    @pytest.mark.parametrize(
        ("service", "drain"), [("hub", "shutdown_timeout_s"), ("worker", "drain_timeout_s")]
    )
    def test_a_stopping_hub_or_worker_has_its_drain_and_the_rest_before_the_kill(
        self, service: str, drain: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """As long as `hubbub up` gives it: its drain timeout, then the closing of its
        connections and telemetry (workers/app.py's AFTER_DRAIN_S, within STOP_GRACE_S)."""
        services = compose_services()
        loaded = settings_in(services[service], monkeypatch)
        grace = seconds(services[service]["stop_grace_period"])
        assert AFTER_DRAIN_S < STOP_GRACE_S
        assert grace >= getattr(loaded, drain) + STOP_GRACE_S


# The volume of each generated password and who mounts it: the one-shot `passwords` that
# writes them, the server that needs it, and its clients.
PASSWORD_VOLUMES = {
    "postgres-password": {"passwords", "postgres", "worker", "migrate"},
    "redis-password": {"passwords", "redis", "hub", "worker", "migrate"},
    "grafana-password": {"passwords", "grafana"},
}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's volumes: name → where it is mounted."""
    return {m["source"]: m["target"] for m in service.get("volumes", []) if m["type"] == "volume"}


class TestGeneratedPasswords:
    """PostgreSQL, Redis and Grafana's admin have passwords generated on the first `up`
    (as `hubbub up` generates its embedded servers'), none of them in the repository,
    each handed over as a file in a volume that only its users mount."""

    def test_no_password_is_written_in_the_compose_file(self) -> None:
        services = compose_services(COMPOSE_PROFILES="cluster")
        assert "POSTGRES_PASSWORD" not in services["postgres"]["environment"]
        for name in ("hub", "worker", "migrate"):
            environment = services[name]["environment"]
            assert urlsplit(environment["REDIS_URL"]).password is None, name
            if name != "hub":
                assert urlsplit(environment["DATABASE_URL"]).password is None, name
        assert "GF_SECURITY_ADMIN_PASSWORD" not in services["grafana"]["environment"]

    def test_each_password_reaches_its_server_and_clients_only(self) -> None:
        services = compose_services(COMPOSE_PROFILES="cluster")
        for volume, users in PASSWORD_VOLUMES.items():
            assert {n for n, s in services.items() if volume in _mounts(s)} == users, volume
        files = {
            "postgres": ("postgres-password", "POSTGRES_PASSWORD_FILE"),
            "grafana": ("grafana-password", "GF_SECURITY_ADMIN_PASSWORD__FILE"),
            "worker": ("postgres-password", "DATABASE_PASSWORD_FILE"),
            "migrate": ("postgres-password", "DATABASE_PASSWORD_FILE"),
            "hub": ("redis-password", "REDIS_PASSWORD_FILE"),
        }
        for name, (volume, variable) in files.items():
            path = services[name]["environment"][variable]
            assert path == f"{_mounts(services[name])[volume]}/password", name
        assert (
            services["worker"]["environment"]["REDIS_PASSWORD_FILE"]
            == (services["hub"]["environment"]["REDIS_PASSWORD_FILE"])
        )
        for name in ("postgres", "redis", "grafana"):
            done = services[name]["depends_on"]["passwords"]["condition"]
            assert done == "service_completed_successfully", name

    def test_postgresql_is_on_a_network_only_the_workers_share(self) -> None:
        services = compose_services()
        assert set(services["postgres"]["networks"]) == {"db"}
        on_db = {name for name, s in services.items() if "db" in s.get("networks", {})}
        assert on_db == {"postgres", "worker", "migrate"}

    def test_the_one_shot_makes_them_once_and_redis_asks_for_its_own(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Its script, run here on folders in place of its volumes: every password
        generated, readable by the other images' users (postgres, redis and grafana run
        as users of their own), kept on a second run (PostgreSQL takes its password only
        when it makes its data folder); a real redis-server on the generated config lets
        in the client that reads REDIS_PASSWORD_FILE, and its health check, only."""
        services = compose_services()
        one_shot = services["passwords"]
        script = as_run(one_shot["command"][-1])
        folders = {}
        for volume, target in _mounts(one_shot).items():
            folders[volume] = tmp_path / volume
            folders[volume].mkdir()
            script = script.replace(target, str(folders[volume]))
        path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # its `python`

        def generate() -> dict[str, str]:
            result = _run(["sh", "-c", script], env={**os.environ, "PATH": path})
            assert result.returncode == 0, result.stdout + result.stderr
            return {v: (folders[v] / "password").read_text() for v in PASSWORD_VOLUMES}

        first = generate()
        assert len({p.strip() for p in first.values()}) == 3
        assert all(len(p.strip()) >= 32 for p in first.values())
        for volume in PASSWORD_VOLUMES:
            assert stat.S_IMODE((folders[volume] / "password").stat().st_mode) == 0o444
        assert generate() == first

        redis = services["redis"]
        mounted = _mounts(redis)["redis-password"]
        config = redis["command"][redis["command"].index("redis-server") + 1]
        assert config.startswith(mounted + "/")
        port = free_port()
        server = subprocess.Popen(
            [
                EmbeddedRedis.binary(),
                config.replace(mounted, str(folders["redis-password"])),
                *("--port", str(port), "--bind", "127.0.0.1", "--save", ""),
                *("--dir", str(tmp_path)),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
            monkeypatch.setenv("REDIS_PASSWORD_FILE", str(folders["redis-password"] / "password"))
            wait_for_port("127.0.0.1", port, 30, server)
            with Redis.from_url(str(Settings(_env_file=None).redis_url)) as client:  # type: ignore[call-arg]
                assert client.ping()
            no_retries = Retry(NoBackoff(), 0)  # a refusal is final
            with Redis(port=port, retry=no_retries) as stranger, pytest.raises(AuthenticationError):
                stranger.ping()
            health = as_run(" ".join(redis["healthcheck"]["test"][1:]))
            health = health.replace(mounted, str(folders["redis-password"]))
            # The image's redis-cli asks its own server; this one asks the test's.
            tools = tmp_path / "bin"
            tools.mkdir()
            cli = EmbeddedRedis.binary().parent / "redis-cli"
            (tools / "redis-cli").write_text(f'#!/bin/sh\nexec "{cli}" -p {port} "$@"\n')
            (tools / "redis-cli").chmod(0o755)
            env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
            assert _run(["sh", "-c", health], env=env).returncode == 0
            (folders["redis-password"] / "password").chmod(0o644)
            (folders["redis-password"] / "password").write_text("wrong\n")
            assert _run(["sh", "-c", health], env=env).returncode != 0
        finally:
            server.terminate()
            server.wait(10)


def as_run(text: str) -> str:
    """A command of ``docker-compose config``'s output as the container gets it: the
    output keeps ``$$``, compose's escape of a literal ``$``."""
    return text.replace("$$", "$")


def _run(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, env=env)


Directive = tuple[str, list[str], list["Directive"]]


def _nginx_blocks(text: str) -> list[Directive]:
    """nginx's config as (name, args, children): enough of its grammar for these files
    (comments, quoted strings, ``;`` and ``{…}``)."""
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|[{};]|[^\s{};"\']+', re.sub(r"#.*", "", text))
    root: list[Directive] = []
    stack = [root]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].append((words[0], words[1:], []))
            words = []
        elif token == "{":
            children: list[Directive] = []
            stack[-1].append((words[0], words[1:], children))
            stack.append(children)
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token.strip("\"'"))
    return root


def _find(block: list[Directive], name: str) -> list[Directive]:
    return [d for d in block if d[0] == name]


class TestNginx:
    def test_debian_nginx_accepts_the_shipped_config(self, tmp_path: Path) -> None:
        """`nginx -t` with brotli loaded; only the listen port, the hubs' addresses and the
        pid/log/temp paths rewritten (tests/support/deploy.py)."""
        config = deploy.local_nginx_config(tmp_path, port=free_port(), hub_ports=[8081, 8082])
        result = _run(deploy.nginx_command(config, "-t"))
        assert result.returncode == 0, result.stderr
        assert "syntax is ok" in result.stderr

    def test_the_hubs_are_balanced_round_robin_with_passive_health_checks(self) -> None:
        http = _find(_nginx_blocks(deploy.NGINX_CONF.read_text()), "http")[0][2]
        (upstream,) = _find(http, "upstream")
        assert upstream[1] == ["hubbub_hubs"]
        balancing = {d[0] for d in upstream[2]} - {"server", "keepalive"}
        assert balancing == set()  # no ip_hash, hash, sticky: round robin, no stickiness
        for _, args, _ in _find(upstream[2], "server"):
            assert any(a.startswith("max_fails=") for a in args)
            assert any(a.startswith("fail_timeout=") for a in args)
        (server,) = _find(http, "server")
        (next_upstream,) = _find(server[2], "proxy_next_upstream")
        # A retry only when the request never reached a hub; never POST/PATCH again.
        assert next_upstream[1] == ["error", "timeout"]

    def test_every_proxied_location_tells_the_hub_the_client_address(self) -> None:
        """A location with any proxy_set_header of its own inherits none: each one must
        set X-Forwarded-For (hub/client_ip.py trusts it from HUBBUB_TRUSTED_PROXIES)."""
        http = _find(_nginx_blocks(deploy.NGINX_CONF.read_text()), "http")[0][2]
        (server,) = _find(http, "server")
        inherited = {d[1][0]: d[1][1] for d in _find(server[2], "proxy_set_header")}
        locations = {" ".join(d[1]): d[2] for d in _find(server[2], "location")}
        assert set(locations) == {"= /ws", "/api/", "/"}
        for where, block in locations.items():
            assert _find(block, "proxy_pass")[0][1] == ["http://hubbub_hubs"]
            own = {d[1][0]: d[1][1] for d in _find(block, "proxy_set_header")}
            headers = own or inherited
            assert headers["X-Forwarded-For"] == "$proxy_add_x_forwarded_for", where
            # With its port: a browser's Origin (http://HOST:8080) is compared with it.
            assert headers["Host"] == "$http_host", where
        ws = {d[1][0]: d[1][1] for d in _find(locations["= /ws"], "proxy_set_header")}
        assert (ws["Upgrade"], ws["Connection"]) == ("$http_upgrade", "$connection_upgrade")

    def test_only_the_static_app_is_compressed(self) -> None:
        http = _find(_nginx_blocks(deploy.NGINX_CONF.read_text()), "http")[0][2]
        (server,) = _find(http, "server")
        compressed = {
            " ".join(d[1])
            for d in _find(server[2], "location")
            if _find(d[2], "gzip") == [("gzip", ["on"], [])]
            and _find(d[2], "brotli") == [("brotli", ["on"], [])]
        }
        assert compressed == {"/"}
        assert not _find(http, "gzip")
        assert not _find(server[2], "gzip")

    def test_the_nginx_image_has_hadolint_nothing_to_say(self) -> None:
        result = _run([str(BIN / "hadolint"), str(deploy.DEPLOY / "nginx" / "Dockerfile")])
        assert (result.returncode, result.stdout) == (0, "")


class TestPrometheus:
    def test_promtool_accepts_the_config_and_its_rule_files(self) -> None:
        result = _run(
            [deploy.debian_tool("promtool"), "check", "config", "prometheus.yml"],
            cwd=deploy.PROMETHEUS_YML.parent,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    @pytest.mark.parametrize(("rules", "cases"), RULE_FILES, ids=["hubs", "workers"])
    def test_promtool_accepts_the_alert_rules(self, rules: Path, cases: Path) -> None:
        result = _run([deploy.debian_tool("promtool"), "check", "rules", str(rules)])
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(rules_of(rules))} rules found" in result.stdout

    @pytest.mark.parametrize(("rules", "cases"), RULE_FILES, ids=["hubs", "workers"])
    def test_every_alert_passes_its_promtool_test(self, rules: Path, cases: Path) -> None:
        result = _run(
            [deploy.debian_tool("promtool"), "test", "rules", cases.name], cwd=cases.parent
        )
        assert result.returncode == 0, result.stdout + result.stderr

    @pytest.mark.parametrize(("rules", "cases"), RULE_FILES, ids=["hubs", "workers"])
    def test_every_alert_has_a_case_that_fires_it(self, rules: Path, cases: Path) -> None:
        fired = {
            check["alertname"]
            for case in yaml.safe_load(cases.read_text())["tests"]
            for check in case["alert_rule_test"]
            if check["exp_alerts"]
        }
        assert fired == {rule["alert"] for rule in rules_of(rules)}

    def test_prometheus_loads_both_rule_files(self) -> None:
        config = yaml.safe_load(deploy.PROMETHEUS_YML.read_text())
        assert config["rule_files"] == [deploy.ALERTS_YML.name, WORKER_ALERTS_YML.name]

    def test_the_alerts_that_matter_are_there(self) -> None:
        """Issue 15's list: no workers answering, 5xx ratio, RPC p99, outbox lag,
        JetStream lag, slow-consumer closes, dependency down."""
        names = {rule["alert"] for rule in rules_of(deploy.ALERTS_YML)}
        names |= {rule["alert"] for rule in rules_of(WORKER_ALERTS_YML)}
        assert {
            "HubbubNoWorkersAnswering",
            "HubbubHigh5xxRatio",
            "HubbubRpcP99High",
            "HubbubOutboxLag",
            "HubbubOutboxSetAside",
            "HubbubJetStreamLag",
            "HubbubJetStreamConsumerLag",
            "HubbubSlowConsumerCloses",
            "HubbubDependencyDown",
        } <= names

    def test_every_alert_says_how_bad_and_where_its_runbook_is(self) -> None:
        operations = (ROOT / "docs" / "operations.md").read_text()
        for rule in rules_of(deploy.ALERTS_YML) + rules_of(WORKER_ALERTS_YML):
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            runbook = rule["annotations"]["runbook"]
            assert runbook == f"docs/operations.md#{rule['alert'].lower()}"
            assert re.search(f"^#+ {rule['alert']}$", operations, re.MULTILINE), rule["alert"]

    @pytest.mark.parametrize(
        ("rules", "alert", "service"),
        [
            (deploy.ALERTS_YML, "HubbubHubsMissing", "hub"),
            (WORKER_ALERTS_YML, "HubbubWorkersMissing", "worker"),
        ],
    )
    def test_the_missing_replica_alerts_expect_what_compose_runs(
        self, rules: Path, alert: str, service: str
    ) -> None:
        """A stopped container's target vanishes (no `up == 0`): these alerts count the
        targets that answer against the replicas, which the rule states as a number."""
        (rule,) = [r for r in rules_of(rules) if r["alert"] == alert]
        replicas = compose_services()[service]["deploy"]["replicas"]
        expected = re.fullmatch(r".*\) < (\d+)", rule["expr"].strip())
        assert expected is not None, rule["expr"]
        assert int(expected[1]) == replicas
        assert f" of {replicas} " in rule["annotations"]["summary"]
        assert f"than the {replicas} that" in rule["annotations"]["description"]

    def test_hubs_and_workers_are_scraped_on_their_admin_port(self) -> None:
        config = yaml.safe_load(deploy.PROMETHEUS_YML.read_text())
        jobs = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"]}
        assert set(jobs) == {"hubbub-hub", "hubbub-worker"}
        env = compose_services()["hub"]["environment"]
        for job, service in (("hubbub-hub", "hub"), ("hubbub-worker", "worker")):
            assert jobs[job]["names"] == [service]
            assert str(jobs[job]["port"]) == env["HUBBUB_ADMIN_PORT"]
        assert env["HUBBUB_ADMIN_HOST"] == "0.0.0.0"  # noqa: S104 - the compose network


class TestAlertmanager:
    def test_amtool_accepts_the_config(self) -> None:
        result = _run([deploy.debian_tool("amtool"), "check-config", str(deploy.ALERTMANAGER_YML)])
        assert result.returncode == 0, result.stdout + result.stderr


class TestGrafana:
    def test_every_dashboard_query_uses_the_provisioned_data_source(self) -> None:
        provisioned = yaml.safe_load(
            (deploy.GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
        )["datasources"]
        uids = {source["uid"] for source in provisioned}
        paths = sorted(deploy.DASHBOARDS.rglob("*.json"))  # the workers' in workers/
        assert len(paths) == 2
        for path in paths:
            for panel in deploy.dashboard_panels(path):
                for target in panel.get("targets", []):
                    assert target["datasource"]["uid"] in uids, panel["title"]

    def test_grafana_loads_the_dashboards_from_where_compose_mounts_them(self) -> None:
        provider = yaml.safe_load(
            (deploy.GRAFANA / "provisioning" / "dashboards" / "hubbub.yml").read_text()
        )["providers"][0]
        mounts = compose_services()["grafana"]["volumes"]
        targets = {m["target"]: Path(m["source"]) for m in mounts if m["type"] == "bind"}
        assert targets[provider["options"]["path"]] == deploy.DASHBOARDS


class TestMetricNames:
    """Which metric names a PromQL expression reads (the live check in
    tests/e2e/test_nginx_balancer.py compares them with a hub's /metrics)."""

    def test_names_are_told_from_functions_labels_and_keywords(self) -> None:
        expr = (
            'sum by (job) (rate(hubbub_http_requests_total{status="5xx", job=~"a|b"}[5m]))'
            " / sum without (instance) (rate(other_total[$__rate_interval])) > 0.05"
            " and on (job) sum(hubbub_ws_connections offset 10m) > bool 1e3"
            ' or absent(up{job="x"} == 1)'
        )
        assert deploy.metric_names(expr) == {
            "hubbub_http_requests_total",
            "other_total",
            "hubbub_ws_connections",
            "up",
        }

    def test_every_alert_and_panel_reads_some_metric(self) -> None:
        expressions = deploy.every_expression()
        assert len(expressions) >= len(deploy.alert_rules()) + 10
        for where, expr in expressions.items():
            assert deploy.metric_names(expr), where

    def test_exposition_names_include_what_each_type_promises(self) -> None:
        text = (
            "# TYPE a_total counter\n"
            "# TYPE h histogram\n"
            'h_bucket{le="+Inf"} 0\n'
            "# TYPE g gauge\ng 1\n"
            'c{x="1"} 2\n'
        )
        assert deploy.exported_names(text) == {
            "a_total",
            "a_total_total",
            "h_bucket",
            "h_sum",
            "h_count",
            "g",
            "c",
        }
