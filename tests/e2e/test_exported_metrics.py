"""What Prometheus scrapes, after a short load: a hub's admin /metrics and a worker's
/metrics read with ``curl``, as an operator would.

* The latency histograms of HTTP, RPC and the worker's handlers have non-zero buckets
  (run with ``-s`` to see the lines ``curl`` got).
* Every metric name the alerts and dashboards read is exported by the process they
  are written for: alerts.yml and dashboards/*.json by a hub, worker-alerts.yml and
  dashboards/workers/*.json by a worker (Prometheus's own ``up`` aside).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS

from cli.embedded.process import free_port
from hub.admin import create_admin_app
from hubbub.config import Settings
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import publish
from tests.support import deploy

WORKER_ALERTS = deploy.DEPLOY / "prometheus" / "worker-alerts.yml"
WORKER_DASHBOARDS = deploy.DASHBOARDS / "workers"
REQUESTS = 40


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_metrics_port": free_port()})


def _curl(url: str) -> str:
    """``curl -s URL``: what any scraper gets."""
    curl = shutil.which("curl")
    assert curl, "curl is not installed"
    result = subprocess.run(
        [curl, "-sS", "--max-time", "10", url], capture_output=True, text=True, check=True
    )
    return result.stdout


async def _load(
    hub_server: TestServer, client: ClientFactory, nc: NATS, settings: Settings
) -> None:
    """REST and RPC calls, one failing handler, a publication to a subscriber."""
    base = f"http://127.0.0.1:{hub_server.port}/api/v1"
    async with aiohttp.ClientSession() as session:
        for seq in range(REQUESTS):
            async with session.post(f"{base}/test/echo", json={"key": "load", "seq": seq}) as r:
                assert r.status == 200
        async with session.post(f"{base}/test/crash", json={"key": "load", "seq": 0}) as r:
            assert r.status == 500
    a = await client("load")
    for seq in range(REQUESTS):
        assert (await a.rpc("test.echo", {"key": "ws", "seq": seq}))["seq"] == seq
    sub = await a.subscribe("public:load")
    await publish(nc, settings, "public:load", {"n": 1})
    await asyncio.wait_for(sub.queue.get(), 10)


def _nonzero_buckets(exposition: str, name: str) -> list[str]:
    """The ``<name>_bucket`` lines with a finite ``le`` and a count above zero."""
    return [
        line
        for line in exposition.splitlines()
        if line.startswith(f"{name}_bucket{{")
        and 'le="+Inf"' not in line
        and float(line.rsplit(" ", 1)[1]) > 0
    ]


async def test_after_a_short_load_hub_and_worker_metrics_have_latency_buckets(
    settings: Settings,
    hub_server: TestServer,
    aiohttp_server: Any,
    client: ClientFactory,
    nc: NATS,
) -> None:
    admin: TestServer = await aiohttp_server(create_admin_app(hub_server.app))
    await _load(hub_server, client, nc, settings)

    hub_url = f"http://127.0.0.1:{admin.port}/metrics"
    worker_url = f"http://{settings.admin_host}:{settings.worker_metrics_port}/metrics"
    hub_text, worker_text = await asyncio.gather(
        asyncio.to_thread(_curl, hub_url), asyncio.to_thread(_curl, worker_url)
    )
    shown = {
        hub_url: [
            "hubbub_http_request_duration_seconds",
            "hubbub_rpc_duration_seconds",
            "hubbub_bus_round_trip_seconds",
        ],
        worker_url: ["hubbub_worker_handler_seconds"],
    }
    for url, names in shown.items():
        text = hub_text if url == hub_url else worker_text
        print(f"\n$ curl -s {url}")
        for name in names:
            lines = _nonzero_buckets(text, name)
            assert lines, f"{name}: no bucket above zero"
            ok = [line for line in lines if 'outcome="ok"' in line or "status=" in line]
            print("\n".join(ok[:3] + [line for line in lines if line not in ok][:1]))
    assert re.search(
        r'^hubbub_worker_handler_seconds_count\{operation="test.crash",outcome="internal"\} 1\.0$',
        worker_text,
        re.MULTILINE,
    )
    assert re.search(r"^hubbub_jetstream_up 1\.0$", hub_text, re.MULTILINE)
    assert re.search(r"^hubbub_jetstream_up 1\.0$", worker_text, re.MULTILINE)

    # Each alert and panel reads only what the process it watches exports.
    hub_names = deploy.exported_names(hub_text) | deploy.SCRAPE_SERIES
    worker_names = deploy.exported_names(worker_text) | deploy.SCRAPE_SERIES
    missing = {
        where: sorted(names)
        for where, expr in deploy.every_expression().items()
        if (names := deploy.metric_names(expr) - hub_names)
    }
    missing |= {
        where: sorted(names)
        for where, expr in worker_expressions().items()
        if (names := deploy.metric_names(expr) - worker_names)
    }
    assert missing == {}


def worker_expressions() -> dict[str, str]:
    """Every PromQL expression of worker-alerts.yml and the workers' dashboards."""
    found: dict[str, str] = {}
    for group in yaml.safe_load(WORKER_ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                found[f"worker-alerts.yml / {rule['alert']}"] = str(rule["expr"])
    for path in sorted(WORKER_DASHBOARDS.glob("*.json")):
        for panel in _panels(orjson.loads(path.read_bytes())["panels"]):
            for n, target in enumerate(panel.get("targets", [])):
                found[f"workers/{path.name} / {panel['title']} #{n}"] = target["expr"]
    assert len(found) > 10
    return found


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels", [])))
    return out


def test_worker_files_are_where_the_test_reads_them() -> None:
    assert Path(WORKER_ALERTS).is_file()
    assert list(WORKER_DASHBOARDS.glob("*.json"))
