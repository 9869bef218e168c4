"""`hubbub up --nats-nodes 3`: an embedded NATS cluster, supervised node by node."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeout

from cli.embedded.nats_auth import NatsAuthFolder
from cli.runtime import read_runtime
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.subjects import Subjects
from tests.integration.test_cli import (
    Up,
    _assert_ready,
    _kill_and_wait_for_restart,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def connect_as_worker(state_dir: Path, servers: list[str]) -> NATS:
    folder = NatsAuthFolder.of_state_dir(state_dir)
    return await nats.connect(
        servers, user="worker", password=folder.password("worker"), connect_timeout=5
    )


class TestUpWithANatsCluster:
    async def test_three_nodes_every_stream_on_each_and_a_killed_node_comes_back(
        self, up_env: dict[str, str]
    ) -> None:
        """Three nodes, each its own data folder; NATS_URL (runtime.json, the banner)
        lists them all; the streams are kept by all three; a node refuses anonymous
        clients; a SIGKILLed node is started again on its ports while the hub stays
        ready, and it is a current replica of the streams again."""
        up = Up(up_env, "--nats-nodes", "3")
        try:
            up.wait_until_up()
            runtime = read_runtime(up.state_dir)
            servers = runtime["NATS_URL"].split(",")
            assert len(set(servers)) == 3
            folders = ", ".join(str(up.state_dir.resolve() / f"nats-{n}") for n in (1, 2, 3))
            assert (
                f"  NATS       {runtime['NATS_URL']}   "
                f"(embedded cluster of 3 nodes, data in {folders})"
            ) in up.output
            assert {"nats-1", "nats-2", "nats-3"} <= set(up.pids())

            anonymous = NATS()
            with pytest.raises(Exception, match="Authorization Violation"):
                await anonymous.connect(servers[1], allow_reconnect=False, connect_timeout=5)
            await anonymous.close()

            stream = Subjects("").stream(ChannelKind.WORKSPACE)
            nc = await connect_as_worker(up.state_dir, servers)
            try:
                info = await nc.jetstream().stream_info(stream)
                assert info.config.num_replicas == 3

                await _kill_and_wait_for_restart(up, "nats-2")
                assert read_runtime(up.state_dir) == runtime  # the same ports
                hub = runtime["HUB_URLS"]
                async with aiohttp.ClientSession() as http:
                    await eventually(lambda: _assert_ready(http, hub), timeout=30)

                async def all_three_current() -> None:
                    try:
                        info = await nc.jetstream().stream_info(stream)
                    except NatsTimeout:  # no answer while the stream elects a leader
                        raise AssertionError("the stream does not answer yet") from None
                    assert info.cluster is not None
                    peers = {info.cluster.leader} | {
                        p.name for p in info.cluster.replicas or [] if p.current
                    }
                    assert peers == {"nats-1", "nats-2", "nats-3"}

                await eventually(all_three_current, timeout=30)
            finally:
                await nc.close()
            assert "nats-2 was killed by SIGKILL; restart 1 in 0.5s" in up.output
            up.proc.send_signal(signal.SIGINT)
            assert up.finish() == 0, up.output
        finally:
            up.close()
