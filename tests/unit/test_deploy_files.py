"""The container files stay valid (no Docker engine here: validated without one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from hubbub.embedded.nats_auth import COMPOSE_NODES, NatsAuthFolder
from hubbub.embedded.servers import EmbeddedNats

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


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
            "hub",
            "migrate",
            "nats",
            "nats-auth",
            "postgres",
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
        assert nats["command"][:2] == ["-c", "/auth/nats.conf"]
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
            assert command[:2] == ["-c", "/auth/cluster-nats.conf"]
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
        assert command[:2] == ["-c", "/auth/nats.conf"]
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
