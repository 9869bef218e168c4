"""A NATS cluster's configuration: the server list, the replica count, the nodes' configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli.embedded.nats_auth import NatsAuthFolder
from cli.embedded.servers import nats_cluster
from hubbub.config import Settings
from hubbub.contracts.channels import DEFAULT_POLICIES, ChannelKind
from hubbub.contracts.subjects import Subjects
from hubbub.natsconn import nats_servers
from hubbub.streams import stream_config, stream_replicas

A, B, C, D = (f"nats://127.0.0.1:{port}" for port in (4222, 4223, 4224, 4225))


def settings(**kwargs: object) -> Settings:
    return Settings(_env_file=None, **kwargs)  # type: ignore[arg-type]


class TestServerList:
    def test_one_url_is_a_list_of_one(self) -> None:
        assert nats_servers(A) == [A]

    def test_a_comma_separated_list_is_split_and_trimmed(self) -> None:
        assert nats_servers(f"{A}, {B} ,{C},") == [A, B, C]


class TestReplicas:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [(A, 1), (f"{A},{B}", 2), (f"{A},{B},{C}", 3), (f"{A},{B},{C},{D}", 3), (None, 1)],
    )
    def test_one_per_server_in_nats_url_at_most_three(self, url: str | None, expected: int) -> None:
        assert stream_replicas(settings(nats_url=url)) == expected

    def test_the_setting_overrides_the_count(self) -> None:
        assert stream_replicas(settings(nats_url=A, nats_replicas=3)) == 3

    def test_a_stream_is_configured_with_its_replicas(self) -> None:
        kind = ChannelKind.WORKSPACE
        config = stream_config(Subjects("t1"), kind, DEFAULT_POLICIES[kind], replicas=3)
        assert config.num_replicas == 3
        assert stream_config(Subjects("t1"), kind, DEFAULT_POLICIES[kind]).num_replicas == 1


class TestNodeConfigs:
    def test_each_node_routes_to_the_others_as_the_route_user_and_loads_the_users(
        self, tmp_path: Path
    ) -> None:
        folder = NatsAuthFolder(tmp_path / "nats-auth")
        folder.ensure()
        nodes = nats_cluster(tmp_path, folder, 3)
        assert [n.name for n in nodes] == ["nats-1", "nats-2", "nats-3"]
        assert [n.data_dir for n in nodes] == [tmp_path / f"nats-{i}" for i in (1, 2, 3)]
        password = folder.password("route")
        listens = []
        for i, node in enumerate(nodes, start=1):
            assert node.config is not None
            assert node.config.stat().st_mode & 0o777 == 0o600  # it holds the route password
            text = node.config.read_text()
            assert f'server_name: "nats-{i}"' in text
            assert "include nats.conf" in text
            assert f'"user": "route",\n    "password": "{password}"' in text
            (listen,) = re.findall(r'"listen": "([^"]+)"', text)
            routes = re.findall(rf"nats-route://route:{re.escape(password)}@([^\"]+)", text)
            listens.append(listen)
            assert listen not in routes
            assert len(routes) == 2
        assert len(set(listens)) == 3
        assert all(listen.startswith("127.0.0.1:") for listen in listens)

    def test_the_route_password_is_made_once(self, tmp_path: Path) -> None:
        folder = NatsAuthFolder(tmp_path / "nats-auth")
        folder.ensure()
        first = folder.password("route")
        folder.ensure()
        assert folder.password("route") == first
        assert first not in {folder.password("hub"), folder.password("worker")}
