"""``/api/v1/health`` (the process is alive) and ``/api/v1/ready`` (it can do real work)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from hub.state import BUS, CATALOG, NATS_CONN, REDIS
from hubbub.contracts.api.system import WorkerReadiness
from hubbub.contracts.errors import HubbubError
from hubbub.dependencies import RETRY_AFTER_S
from hubbub.logs import request_id_var

# A readiness probe must answer quickly: a worker that is not found within this long
# (the bus keeps looking for one until shortly before it) counts as none.
READY_TIMEOUT_S = 2.0


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, dumps=lambda o: orjson.dumps(o).decode())


async def ready(request: web.Request) -> web.Response:
    """A real round trip: hub → NATS → a worker → PostgreSQL and Redis → back."""
    app = request.app
    components: dict[str, dict[str, Any]] = {}
    components["nats"] = {"ok": app[NATS_CONN].is_connected}

    start = time.perf_counter()
    try:
        await asyncio.wait_for(app[REDIS].ping(), 2.0)
        components["redis"] = {"ok": True, "latency_ms": _ms(start)}
    except Exception as exc:
        components["redis"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}

    start = time.perf_counter()
    try:
        reply = await app[BUS].request(
            app[CATALOG]["system.ready"],
            {},
            caller=None,
            request_id=request_id_var.get(),
            timeout=READY_TIMEOUT_S,
        )
        worker: WorkerReadiness = reply.value
        components["workers"] = {"ok": True, "latency_ms": _ms(start), "answered_by": worker.worker}
        components["postgres"] = worker.postgres.model_dump(exclude_none=True)
        # The hub's own Redis ping stands unless the worker's view is worse.
        if not worker.redis.ok:
            components["redis"] = worker.redis.model_dump(exclude_none=True)
    except HubbubError as exc:
        components["workers"] = {"ok": False, "error": exc.message}
        components["postgres"] = {"ok": False, "error": "unknown: no worker answered"}

    ok = all(c["ok"] for c in components.values())
    failing = sorted(name for name, c in components.items() if not c["ok"])
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "components": components}
    if failing:
        body["failing"] = failing
    outages = app[BUS].health.status()  # what this hub's requests ran into, and since when
    if outages:
        body["outages"] = outages
    return web.Response(
        status=200 if ok else 503,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=None if ok else {"Retry-After": str(RETRY_AFTER_S)},
    )


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
