"""Hubbub on a 3-node NATS cluster, as `hubbub up --nats-nodes 3` runs it: every node with
JetStream, the generated users and route passwords, streams kept by all three nodes.

Under load — resources created over REST with an ``Idempotency-Key``, retried with the
same key on 503/504, and a browser subscribed to the workspace's channel — the node
that the hub and the worker are connected to is killed (SIGKILL). Both move to another
node; every create succeeds once, the subscriber gets every event once and in order,
and the stream keeps taking writes on the two nodes left."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.embedded.nats_auth import NatsAuthFolder
from cli.embedded.servers import EmbeddedNats, nats_cluster
from hub.app import create_app
from hub.state import NATS_CONN
from hub.ws.history import History
from hubbub.client import HubbubClient
from hubbub.config import Settings
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.subjects import Subjects
from hubbub.natsconn import nats_servers
from tests.support import ops
from tests.support.accounts import make_user
from tests.support.nats_auth import as_role, made_auth_folder, streams_connection
from tests.support.tokens import TestTokens
from tests.support.waiting import eventually, wait_for
from workers.app import RunningWorker, worker_running

pytestmark = pytest.mark.slow

NODES = 3
CREATES = 60  # resources created in all
CONCURRENCY = 4  # requests in flight at a time
KILL_AFTER = 20  # creates answered before the node dies
REQUEST_DEADLINE_S = 45.0  # one create, retries included
WORKER_STARTS = 40  # tries to get a worker onto the hub's node (each lands there with p=1/3)


@pytest.fixture
def auth_folder(tmp_path: Path, namespace: str) -> NatsAuthFolder:
    return made_auth_folder(tmp_path, namespace)


@pytest.fixture
def cluster(tmp_path: Path, auth_folder: NatsAuthFolder) -> Iterator[list[EmbeddedNats]]:
    nodes = nats_cluster(tmp_path, auth_folder, NODES)
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:  # only these servers, by their own process
            node.stop()


@pytest.fixture
def settings(
    settings: Settings, cluster: list[EmbeddedNats], auth_folder: NatsAuthFolder
) -> Settings:
    """The worker's: every node of the cluster, as the worker user."""
    return as_role(settings, auth_folder, "worker", nats_url=",".join(n.url for n in cluster))


@pytest.fixture
def hub_settings(settings: Settings, auth_folder: NatsAuthFolder) -> Settings:
    # A reply lost with the node comes back as a 504 within seconds, not the default 10.
    return as_role(settings, auth_folder, "hub", request_timeout_s=3.0)


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    """The test's connection (as the worker user); this test's streams, at R3."""
    async with streams_connection(settings) as conn:
        yield conn


def node_of(cluster: list[EmbeddedNats], conn: NATS) -> EmbeddedNats:
    """The node a client is connected to now."""
    url = conn.connected_url
    assert url is not None, "not connected"
    return next(node for node in cluster if node.port == url.port)


async def worker_on(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    cluster: list[EmbeddedNats],
    node: EmbeddedNats,
) -> RunningWorker:
    """A worker with the full server list that happens to be connected to ``node``: the
    client picks a server at random, so workers are started (and stopped) until one is."""
    for _ in range(WORKER_STARTS):
        starting = worker_running(settings, ops.registry_with_tests())
        running = await starting.__aenter__()
        if node_of(cluster, running.service.nc) is node:
            stack.push_async_exit(starting)
            return running
        await starting.__aexit__(None, None, None)
    raise AssertionError(f"no worker landed on {node.name} in {WORKER_STARTS} starts")


class Load:
    """``CREATES`` resources over REST, ``CONCURRENCY`` at a time; each request is sent
    again with the same key while the hub answers 503 or 504."""

    def __init__(self, base: str, token: str, workspace: str) -> None:
        self.url = f"{base}/api/v1/workspaces/{workspace}/resources"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ids: dict[int, str] = {}  # create number → the resource it made
        self.retries = 0
        self.answered = asyncio.Event()  # KILL_AFTER creates have succeeded

    async def run(self) -> None:
        numbers: asyncio.Queue[int] = asyncio.Queue()
        for n in range(CREATES):
            numbers.put_nowait(n)
        async with aiohttp.ClientSession() as session:

            async def sender() -> None:
                while not numbers.empty():
                    n = numbers.get_nowait()
                    self.ids[n] = await self.create(session, n)
                    if len(self.ids) >= KILL_AFTER:
                        self.answered.set()

            await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))

    async def create(self, session: aiohttp.ClientSession, n: int) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REQUEST_DEADLINE_S
        headers = {**self.headers, "Idempotency-Key": f"cluster-create-{n}"}
        body = {"kind": "task", "title": f"task {n}"}
        while True:
            async with session.post(self.url, json=body, headers=headers) as response:
                if response.status in (200, 201):
                    return str((await response.json())["id"])
                text = await response.text()
                assert response.status in (503, 504), (response.status, text)
            self.retries += 1
            assert loop.time() < deadline, f"create {n} still failing: {response.status} {text}"
            await asyncio.sleep(0.1)


async def created_events(sub: Any, count: int, timeout: float = 30.0) -> list[Any]:
    """The subscription's publications until ``count`` resource.created events came."""
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        while sum(p.data["type"] == "resource.created" for p in got) < count:
            got.append(await sub.queue.get())
    return got


class TestClusterNodeLoss:
    async def test_the_node_of_the_hub_and_the_worker_dies_under_load_and_nothing_is_lost(
        self,
        cluster: list[EmbeddedNats],
        settings: Settings,
        hub_settings: Settings,
        nc: NATS,
        aiohttp_server: Any,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        js = nc.jetstream()
        subjects = Subjects(settings.namespace)
        stream = await js.stream_info(subjects.stream(ChannelKind.WORKSPACE))
        assert nats_servers(settings.nats_url or "") == [node.url for node in cluster]
        assert stream.config.num_replicas == NODES
        assert stream.cluster is not None
        assert len(stream.cluster.replicas or []) == NODES - 1

        server: TestServer = await aiohttp_server(
            create_app(hub_settings, ops.catalog_with_tests())
        )
        hub_nc: NATS = server.app[NATS_CONN]
        doomed = node_of(cluster, hub_nc)
        async with contextlib.AsyncExitStack() as stack:
            worker = await worker_on(stack, settings, cluster, doomed)
            # The worker kept the streams as they were (R3), not its default of 1.
            stream = await js.stream_info(subjects.stream(ChannelKind.WORKSPACE))
            assert stream.config.num_replicas == NODES

            tokens = TestTokens(settings)
            ann = await make_user(db, "ann-cluster@example.com")
            token = tokens.issue(ann)
            base = f"http://127.0.0.1:{server.port}"
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{base}/api/v1/workspaces",
                    json={"name": "On a cluster"},
                    headers={"Authorization": f"Bearer {token}"},
                ) as response,
            ):
                assert response.status == 201, await response.text()
                workspace = str((await response.json())["id"])
            channel = f"workspace:{workspace}"
            # The outbox relay publishes ``workspace.created`` after the 201. Wait until it
            # is in the stream, so the subscription starts after it: otherwise it can be
            # pushed just after the subscribe reply, and ``sub.offset`` (which follows
            # every publication) would no longer say where the subscription started.
            history = History(nc, subjects)
            await wait_for(lambda: history.last_offset(Channel.parse(channel)), what="the event")
            browser = HubbubClient(f"ws://127.0.0.1:{server.port}/ws", token, backoff_min=0.02)
            stack.push_async_callback(browser.close)
            await browser.connect()
            sub = await browser.subscribe(channel)
            subscribed_at = sub.offset
            assert subscribed_at >= 1  # after ``workspace.created``

            load = Load(base, token, workspace)
            running = asyncio.create_task(load.run())
            await asyncio.wait_for(load.answered.wait(), 30)
            assert doomed.proc is not None
            doomed.proc.send_signal(signal.SIGKILL)
            answered_before = len(load.ids)
            await asyncio.to_thread(doomed.proc.wait, 10)
            await asyncio.wait_for(running, REQUEST_DEADLINE_S + 15)

            assert answered_before < CREATES  # the rest was sent with the node gone
            # Every create answered, each with a resource of its own; no more in the
            # database than were asked for.
            assert sorted(load.ids) == list(range(CREATES))
            assert len(set(load.ids.values())) == CREATES
            async with aiohttp.ClientSession() as session:
                listed = await list_resources(session, base, token, workspace)
            assert sorted(listed) == sorted(load.ids.values())

            # Hub and worker carry on at another node.
            for conn in (hub_nc, worker.service.nc):
                assert node_of(cluster, conn) is not doomed
                assert conn.stats["reconnects"] >= 1

            # The browser got each resource's event once, in order, nothing skipped:
            # exactly what the stream holds for the channel since it subscribed.
            events = await created_events(sub, CREATES)
            ids = [p.data["data"]["id"] for p in events if p.data["type"] == "resource.created"]
            assert sorted(ids) == sorted(load.ids.values())  # each once
            offsets = [p.offset for p in events]
            assert offsets == sorted(set(offsets))

            async def the_stream_holds_exactly_those() -> None:
                # Any replica answers a read: one that lags a little catches up.
                stored = await history.after(
                    Channel.parse(channel), subscribed_at, limit=10 * CREATES
                )
                assert [p.offset for p in stored] == offsets

            await eventually(the_stream_holds_exactly_those, timeout=10)
            assert (sub.resets, sub.gaps) == (0, 0)

            # The stream still takes writes, led by one of the two nodes left.
            other = Channel.parse("workspace:after-the-kill")
            ack = await js.publish(subjects.event(other), orjson.dumps({"after": "kill"}))
            assert ack.stream == subjects.stream(ChannelKind.WORKSPACE)
            assert ack.seq > max(offsets)

            async def led_by_a_survivor() -> None:
                info = await js.stream_info(subjects.stream(ChannelKind.WORKSPACE))
                assert info.cluster is not None
                assert info.cluster.leader not in (None, f"nats-{cluster.index(doomed) + 1}")

            await eventually(led_by_a_survivor, timeout=10)


async def list_resources(
    session: aiohttp.ClientSession, base: str, token: str, workspace: str
) -> list[str]:
    """Every resource of the workspace, page after page."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        async with session.get(
            f"{base}/api/v1/workspaces/{workspace}/resources",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        ids += [item["id"] for item in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return ids
