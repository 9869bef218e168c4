"""The container files stay valid (no Docker engine here: validated without one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


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
