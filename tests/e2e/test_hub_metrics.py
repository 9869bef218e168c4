"""The hub's Prometheus metrics on its admin listener, after real traffic: REST calls
through a real hub to a real worker, and RPCs over a real socket."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from prometheus_client.parser import text_string_to_metric_families

from hub.admin import create_admin_app
from hub.ws.service import Realtime
from hubbub.client.client import RemoteError
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.subjects import Subjects
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import publish
from tests.support.waiting import wait_for

Labels = frozenset[tuple[str, str]]


async def _scrape(admin: TestServer) -> tuple[str, dict[str, dict[Labels, float]]]:
    """The exposition, and each sample's value by name and labels."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{admin.port}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return text, samples


def _series(samples: dict[str, dict[Labels, float]], name: str, **labels: str) -> float:
    """The sum of ``name``'s series that carry ``labels`` (and any others)."""
    wanted = set(labels.items())
    return sum(value for key, value in samples.get(name, {}).items() if wanted <= key)


async def test_rest_and_rpc_latencies_are_histograms_by_route_template_and_method(
    hub_server: TestServer, aiohttp_server: Any, client: ClientFactory
) -> None:
    admin: TestServer = await aiohttp_server(create_admin_app(hub_server.app))
    base = f"http://127.0.0.1:{hub_server.port}/api/v1"
    workspace_id = str(uuid.uuid4())
    async with aiohttp.ClientSession() as session:
        for seq in range(3):
            async with session.post(f"{base}/test/echo", json={"key": "m", "seq": seq}) as r:
                assert r.status == 200
        async with session.get(f"{base}/workspaces/{workspace_id}") as r:
            assert r.status == 401  # not signed in: the route matched all the same
        async with session.get(f"{base}/no/such/route") as r:
            assert r.status == 404
        async with session.request("BREW", f"{base}/no/such/pot") as r:
            assert r.status >= 400

    a = await client("a")
    assert (await a.rpc("test.echo", {"key": "ws", "seq": 1}))["seq"] == 1
    assert (await a.rpc("test.echo", {"key": "ws", "seq": 2}))["seq"] == 2

    text, samples = await _scrape(admin)
    duration = "hubbub_http_request_duration_seconds"
    echo = {"method": "POST", "route": "/api/v1/test/echo", "status": "200"}
    assert _series(samples, f"{duration}_count", **echo) == 3
    assert _series(samples, f"{duration}_bucket", le="+Inf", **echo) == 3
    assert _series(samples, f"{duration}_sum", **echo) > 0
    assert (
        _series(
            samples,
            f"{duration}_count",
            method="GET",
            route="/api/v1/workspaces/{workspace_id}",
            status="401",
        )
        == 1
    )
    assert workspace_id not in text  # the template, never the raw path
    assert "/no/such/route" not in text
    assert "BREW" not in text  # a made-up method is not a label value
    assert _series(samples, f"{duration}_count", route="unmatched", status="404") == 1
    assert _series(samples, "hubbub_http_requests_total", status="2xx") >= 3

    rpc = "hubbub_rpc_duration_seconds"
    assert _series(samples, f"{rpc}_count", method="test.echo", outcome="ok") == 2
    assert _series(samples, f"{rpc}_bucket", method="test.echo", outcome="ok", le="+Inf") == 2

    # REST and RPC calls of test.echo alike cross the bus.
    bus = "hubbub_bus_round_trip_seconds"
    assert _series(samples, f"{bus}_count", operation="test.echo", outcome="ok") == 5

    assert _series(samples, "hubbub_ws_connections") == 1
    assert _series(samples, "hubbub_ws_frames_in_total") >= 2  # the two rpcs
    assert _series(samples, "hubbub_ws_frames_out_total") >= 3
    assert _series(samples, "hubbub_ws_bytes_out_total") > 0
    assert _series(samples, "hubbub_dependency_up", dependency="nats") == 1
    assert _series(samples, "hubbub_dependency_up", dependency="workers") == 1


async def test_failed_and_unknown_rpcs_are_counted_by_error_code_under_few_labels(
    hub_server: TestServer, aiohttp_server: Any, client: ClientFactory
) -> None:
    admin: TestServer = await aiohttp_server(create_admin_app(hub_server.app))
    a = await client("a")
    for name in ("no.such.method", "another.made.up.name"):
        with pytest.raises(RemoteError) as refused:
            await a.rpc(name, {})
        assert refused.value.code == "not_found"
    with pytest.raises(RemoteError) as invalid:
        await a.rpc("test.echo", {"key": "bad", "seq": "not a number"})
    assert invalid.value.code == "validation_failed"

    text, samples = await _scrape(admin)
    rpc = "hubbub_rpc_duration_seconds_count"
    assert _series(samples, rpc, method="unknown", outcome="not_found") == 2
    assert "no.such.method" not in text
    assert _series(samples, rpc, method="test.echo", outcome="validation_failed") == 1
    # A call refused before the bus never crossed it.
    assert _series(samples, "hubbub_bus_round_trip_seconds_count") == 0


async def test_each_hub_app_has_its_own_registry(
    hub_server: TestServer, aiohttp_server: Any
) -> None:
    """Two admin apps on one hub read one registry; another hub's requests are not in it."""
    first: TestServer = await aiohttp_server(create_admin_app(hub_server.app))
    second: TestServer = await aiohttp_server(create_admin_app(hub_server.app))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{hub_server.port}/api/v1/health") as r:
            assert r.status == 200
        async with session.get(f"http://127.0.0.1:{admin_port(first)}/health") as r:
            assert r.status == 200  # the admin app's own requests are not the hub's
    for admin in (first, second):
        text, samples = await _scrape(admin)
        assert text.count("# TYPE hubbub_ws_connections gauge") == 1
        health = {"method": "GET", "route": "/api/v1/health", "status": "200"}
        assert _series(samples, "hubbub_http_request_duration_seconds_count", **health) == 1


def admin_port(server: TestServer) -> int:
    assert server.port is not None
    return server.port


async def test_a_feed_that_missed_a_publication_counts_as_behind_jetstream(
    hub_server: TestServer,
    aiohttp_server: Any,
    client: ClientFactory,
    realtime: Realtime,
    nc: NATS,
    settings: Settings,
) -> None:
    """hubbub_jetstream_feeds_behind: a publication the stream held at the previous
    scrape that the hub's feed still has not got (its live subscription lost it)."""
    admin: TestServer = await aiohttp_server(create_admin_app(hub_server.app))
    a = await client("a")
    sub = await a.subscribe("public:lagging")
    first = await publish(nc, settings, "public:lagging", {"n": 1})
    pub = await asyncio.wait_for(sub.queue.get(), 10)
    assert pub.offset == first

    _, samples = await _scrape(admin)
    assert _series(samples, "hubbub_jetstream_up") == 1
    assert _series(samples, "hubbub_jetstream_feeds_checked") == 1
    assert _series(samples, "hubbub_jetstream_feeds_behind") == 0
    _, samples = await _scrape(admin)  # delivered: still not behind
    assert _series(samples, "hubbub_jetstream_feeds_behind") == 0

    # The republish is at-most-once: what a lost one looks like to the feed.
    feed = realtime.fanout.feeds["public:lagging"]
    assert feed.sub is not None
    await feed.sub.unsubscribe()
    await publish(nc, settings, "public:lagging", {"n": 2})
    _, samples = await _scrape(admin)  # the stream has it; it may still be on its way
    assert _series(samples, "hubbub_jetstream_feeds_behind") == 0
    _, samples = await _scrape(admin)  # a scrape later, it has not come
    assert _series(samples, "hubbub_jetstream_feeds_behind") == 1


async def test_invalid_publications_are_a_counter_that_releasing_a_feed_does_not_lower(
    hub_server: TestServer,
    aiohttp_server: Any,
    client: ClientFactory,
    realtime: Realtime,
    nc: NATS,
    settings: Settings,
) -> None:
    """A counter that goes down is a reset to Prometheus: increase() would count the
    drops again and HubbubInvalidPublications fire anew."""
    admin: TestServer = await aiohttp_server(create_admin_app(hub_server.app))
    a = await client("a")
    sub = await a.subscribe("public:malformed")
    subject = Subjects(settings.namespace).event(Channel.parse("public:malformed"))
    await nc.jetstream().publish(subject, b"[1, 2]")  # not a JSON object: dropped
    sentinel = await publish(nc, settings, "public:malformed", {"n": 1})
    pub = await asyncio.wait_for(sub.queue.get(), 10)  # the dropped one came before it
    assert pub.offset == sentinel
    _, samples = await _scrape(admin)
    assert _series(samples, "hubbub_ws_invalid_publications_total") == 1

    await a.unsubscribe("public:malformed")
    await wait_for(lambda: "public:malformed" not in realtime.fanout.feeds)
    _, samples = await _scrape(admin)
    assert _series(samples, "hubbub_ws_invalid_publications_total") == 1
