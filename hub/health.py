"""``/api/v1/health`` (the process is alive) and readiness (it can do real work).

Readiness is one check — hub → NATS → a worker → PostgreSQL and Redis → back — told two
ways. The public ``/api/v1/ready`` (unauthenticated, for load balancers) says only
``ok``, ``degraded`` or ``unavailable`` per component: no worker host and pid, no driver
error texts. The admin listener's ``/ready`` (hub/admin.py) tells all of it: latencies,
which worker answered, each error, and the outages this hub's requests ran into. Both
answer 200, or 503 with ``Retry-After``, for the same state, from one check shared by
whoever asks while it runs and for ``READY_REUSE_S`` after (``SharedCheck``): the public
one takes anyone's traffic.

Redis down does not make a hub unready: every feature that uses it falls back
(docs/architecture.md, "With Redis down"), so it is ``degraded`` and the answer stays
200; were it 503, a Redis outage would have a load balancer pull every hub at once. The
one exception is this hub's deny-list (``deny_list``): after a NATS reconnect it may have
missed revocations, and a hub started while Redis is down (or before any worker could say
what is revoked but not in Redis yet) has not loaded them at all; it loads them from the
workers and Redis, and until that load succeeds the hub is not ready (only the hubs whose
link dropped, or that started meanwhile, are pulled).
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from hub.deadlines import time_left
from hub.state import BUS, CATALOG, NATS_CONN, REDIS, REVOCATIONS
from hubbub.contracts.api.system import WorkerReadiness
from hubbub.contracts.errors import HubbubError
from hubbub.dependencies import REDIS as REDIS_NAME
from hubbub.dependencies import RETRY_AFTER_S, Outage, probe_within, redis_outage
from hubbub.logs import request_id_var

# A readiness probe must answer quickly: a worker that is not found within this long
# (the bus keeps looking for one until shortly before it) counts as none.
READY_TIMEOUT_S = 2.0
# Longer than the Redis pool's wait for a free connection (HUBBUB_REDIS_POOL_TIMEOUT_S,
# 2 s by default), so that a busy pool says so itself. A ping that times out shows a busy
# Redis, not a gone one. It runs beside the worker's round trip, not before it.
REDIS_PING_S = 3.0
# How long one check's answer stands for the callers after it (``SharedCheck``).
READY_REUSE_S = 1.0


# Components the hub serves without: each feature that needs one falls back while it
# is down. Not ok, they are "degraded", and readiness still holds.
SERVED_WITHOUT = frozenset({"redis"})


@dataclass(slots=True)
class Readiness:
    components: dict[str, dict[str, Any]]  # name → {"ok": bool, and what was seen}
    outages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failing

    @property
    def failing(self) -> list[str]:
        return sorted(
            name
            for name, c in self.components.items()
            if not c["ok"] and name not in SERVED_WITHOUT
        )

    def state(self, name: str) -> str:
        """``ok``, ``degraded`` (down, served without) or ``unavailable``."""
        if self.components[name]["ok"]:
            return "ok"
        return "degraded" if name in SERVED_WITHOUT else "unavailable"

    def public(self) -> dict[str, Any]:
        """What anyone may see: each component's state, nothing about how or whom."""
        body: dict[str, Any] = {
            "status": "ok" if self.ok else "unavailable",
            "components": {name: self.state(name) for name in self.components},
        }
        if not self.ok:
            body["failing"] = self.failing
        return body

    def detailed(self) -> dict[str, Any]:
        """For operators (the admin listener): latencies, the worker, errors, outages."""
        body: dict[str, Any] = {
            "status": "ok" if self.ok else "unavailable",
            "components": {
                name: {**c, "degraded": True} if self.state(name) == "degraded" else c
                for name, c in self.components.items()
            },
        }
        if not self.ok:
            body["failing"] = self.failing
        if self.outages:
            body["outages"] = self.outages
        return body


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, dumps=lambda o: orjson.dumps(o).decode())


class SharedCheck:
    """One readiness check at a time, its answer reused for ``READY_REUSE_S``: the public
    ``/ready`` takes anyone's traffic, and each check is a worker round trip and a Redis
    ping. Callers that come while one runs wait for it; it runs in a task of its own, so
    that one of them giving up stops it for none, within the time ``within`` left to the
    caller that started it (else ``READY_TIMEOUT_S``). A check that fails is not kept."""

    def __init__(
        self,
        run: Callable[[float | None], Awaitable[Readiness]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run, self._clock = run, clock
        self._running: asyncio.Future[Readiness] | None = None
        self._last: tuple[float, Readiness] | None = None

    async def __call__(self, within: float | None) -> Readiness:
        if self._last is not None and self._clock() - self._last[0] < READY_REUSE_S:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.ensure_future(self._check(within))
        return await asyncio.shield(self._running)

    async def _check(self, within: float | None) -> Readiness:
        try:
            readiness = await self._run(within)
            self._last = (self._clock(), readiness)
            return readiness
        finally:
            self._running = None


_shared: weakref.WeakKeyDictionary[web.Application, SharedCheck] = weakref.WeakKeyDictionary()


async def check(app: web.Application) -> Readiness:
    """The hub's readiness, from the check running or made within ``READY_REUSE_S``
    (``SharedCheck``), else from a new one (``check_now``)."""
    shared = _shared.get(app)
    if shared is None:
        shared = _shared[app] = SharedCheck(functools.partial(check_now, app))
    return await shared(time_left())


async def check_now(app: web.Application, within: float | None = None) -> Readiness:
    """A real round trip: hub → NATS → a worker → PostgreSQL and Redis → back; the worker
    asked within ``READY_TIMEOUT_S``, or ``within`` if sooner."""
    components: dict[str, dict[str, Any]] = {}
    components["nats"] = {"ok": app[NATS_CONN].is_connected}
    revocations = app.get(REVOCATIONS)
    if revocations is not None:
        # Reconnected or just started, and what it may have missed not loaded yet (Redis
        # down, no worker answering): a token revoked meanwhile could pass here, so this
        # hub takes no traffic until it has.
        components["deny_list"] = {"ok": not revocations.behind}

    # The ping in a task of its own, the worker asked from this one.
    pinging = asyncio.ensure_future(ping_redis(app))
    try:
        start = time.perf_counter()
        worker = await _ask_worker(
            app, READY_TIMEOUT_S if within is None else min(within, READY_TIMEOUT_S)
        )
        components["redis"] = await pinging
    finally:
        pinging.cancel()  # the check was cancelled: so is the ping
    if isinstance(worker, HubbubError):
        components["workers"] = {"ok": False, "error": worker.message}
        components["postgres"] = {"ok": False, "error": "unknown: no worker answered"}
    else:
        components["workers"] = {"ok": True, "latency_ms": _ms(start), "answered_by": worker.worker}
        components["postgres"] = worker.postgres.model_dump(exclude_none=True)
        # The hub's own Redis ping stands unless the worker's view is worse.
        if not worker.redis.ok:
            components["redis"] = worker.redis.model_dump(exclude_none=True)
    # What this hub's requests ran into, and since when.
    return Readiness(components, app[BUS].health.status())


async def _ask_worker(app: web.Application, timeout: float) -> WorkerReadiness | HubbubError:
    """A worker's ``system.ready``: its view of PostgreSQL and Redis, or why none came."""
    try:
        reply = await app[BUS].request(
            app[CATALOG]["system.ready"],
            {},
            caller=None,
            request_id=request_id_var.get(),
            timeout=timeout,
        )
    except HubbubError as exc:
        return exc
    answer: WorkerReadiness = reply.value
    return answer


async def ping_redis(app: web.Application) -> dict[str, Any]:
    """``PING`` this hub's Redis within ``REDIS_PING_S``: ``{"ok", "latency_ms" or
    "error"}``. The hub's outage tracker (the bus's ``Health``) records what it finds,
    once each way, so ``hubbub_dependency_up{dependency="redis"}`` and ``/ready``'s
    outages say so whether or not a request ran into it (a hub's requests mostly fall
    back without Redis, and say nothing). A ping that finds no free connection shows a
    busy Redis: not ok here, but saturated, not down. One with no answer in
    ``REDIS_PING_S`` (longer than the pool waits) met a Redis that does not answer: down."""
    health = app[BUS].health
    start = time.perf_counter()
    try:
        await probe_within(app[REDIS].ping, REDIS_PING_S)
    except Exception as exc:
        # A pool with no free connection is saturated; refused, reset, no answer: down.
        outage = redis_outage(exc)
        health.failed(Outage(REDIS_NAME, down=outage is None or outage.down), exc)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    health.came_back(REDIS_NAME)
    return {"ok": True, "latency_ms": _ms(start)}


def readiness_response(readiness: Readiness, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=200 if readiness.ok else 503,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=None if readiness.ok else {"Retry-After": str(RETRY_AFTER_S)},
    )


async def ready(request: web.Request) -> web.Response:
    """The public readiness: 200, or 503 with ``Retry-After``; states only."""
    readiness = await check(request.app)
    return readiness_response(readiness, readiness.public())


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
