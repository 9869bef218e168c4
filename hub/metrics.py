"""The hub's Prometheus metrics (``prometheus_client``), served as ``GET /metrics`` by
the admin listener (hub/admin.py), never the public one.

Each hub app has a registry of its own (``metrics_of``), so several hubs in one process
(the tests) keep apart. Here are what the hub measures as it goes: HTTP requests and
their latency by route template (the request_context middleware), WebSocket RPC latency
by method (hub/ws/rpc.py) and the bus round trip of operation calls, REST and RPC alike
(hub/calls.py). What is read at scrape time (sockets, feeds, dependencies) is collected
by hub/admin.py; how far the feeds lag behind JetStream by ``feed_lag``
(hub/metrics_jetstream.py), which the admin listener asks before each scrape.

This module imports nothing of the hub's state, so the socket and call code can use it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final, NamedTuple

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.metrics_jetstream import FeedLag
from hubbub.metric_buckets import LATENCY_BUCKETS, Timings

# No ``*_created`` series beside each counter and histogram: nothing reads them, and they
# would double the lines of every labelled series.
disable_created_metrics()  # type: ignore[no-untyped-call]

# The route label of a request no route matched (a 404 or 405 before any handler), which
# is labelled with the route template (the resource's canonical path) otherwise.
UNMATCHED: Final = "unmatched"
WS_PATH: Final = "/ws"
METHODS: Final = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class Count:
    """One series of ``Counts``: add to ``value``."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Counts(Collector):
    """A counter with one label, kept by hand: ``prometheus_client``'s ``Counter.inc``
    takes a lock, and the hub counts once a request (and once a socket's upgrade) on the
    event loop's thread alone, which also collects. Exposed at scrape time as that
    counter would be (a series appears with its first use, in the order of first use)."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self.series: dict[str, Count] = {}

    def count(self, value: str) -> Count:
        """The series labelled ``value``; keep it rather than look it up each time."""
        found = self.series.get(value)
        if found is None:
            found = self.series[value] = Count()
        return found

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in list(self.series.items()):
            family.add_metric([value], float(count.value))
        yield family


class _HttpChild(NamedTuple):
    requests: Count
    duration: Histogram | None


class HubMetrics:
    """The metrics of one hub app, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Counted once a request and once a socket: kept by hand (``Counts``).
        self.http_requests = Counts(
            "hubbub_http_requests", "HTTP requests by status class (2xx, 4xx, 5xx, ...).", "status"
        )
        self.registry.register(self.http_requests)
        self._upgrades: Count | None = None  # the 1xx series, made by the first upgrade
        self.http_duration = Histogram(
            "hubbub_http_request_duration_seconds",
            "HTTP request latency (the WebSocket upgrade excluded) by method, route template "
            "and status code.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Observed once an RPC or a bus call: kept by hand (hubbub/metric_buckets.py).
        self.rpc_duration = Timings(
            "hubbub_rpc_duration_seconds",
            "WebSocket RPC latency, command to reply, by method and outcome (ok or the "
            "error code).",
            ("method", "outcome"),
        )
        self.bus_round_trip = Timings(
            "hubbub_bus_round_trip_seconds",
            "Operation calls over NATS, hub to worker and back, by operation and outcome "
            "(ok or the error code), REST and RPC alike.",
            ("operation", "outcome"),
        )
        self.registry.register(self.rpc_duration)
        self.registry.register(self.bus_round_trip)
        self._state: Collector | None = None
        # How far the feeds lag behind JetStream: checked before each scrape (hub/admin.py).
        self.feed_lag = FeedLag()
        self._http_children: dict[tuple[str, AbstractResource | None, int], _HttpChild] = {}

    def collect_state(self, collector: Collector) -> None:
        """Add what is read at scrape time, once (several admin apps may report on
        one hub)."""
        if self._state is None:
            self._state = collector
            self.registry.register(collector)

    def observe_http(self, request: web.Request, status: int, seconds: float) -> None:
        # The labelled children are kept by what names them (as many as routes x
        # methods x statuses): labels() takes a lock and builds a key every time.
        resource = request.match_info.route.resource
        method = request.method
        if resource is None and method not in METHODS:
            method = "other"  # a client's made-up methods are not label values
        key = (method, resource, status)
        child = self._http_children.get(key)
        if child is None:
            counter = self.http_requests.count(f"{status // 100}xx")
            route = resource.canonical if resource is not None else UNMATCHED
            if route == WS_PATH:
                child = _HttpChild(counter, None)  # a socket's "latency" is its lifetime
            else:
                child = _HttpChild(counter, self.http_duration.labels(method, route, str(status)))
            self._http_children[key] = child
        child.requests.value += 1
        if child.duration is not None:
            child.duration.observe(seconds)

    def upgraded(self) -> None:
        """Count a WebSocket upgrade (the 101) of the hub's socket route, as
        ``observe_http`` would, without its lookups (its status class: 1xx)."""
        count = self._upgrades
        if count is None:
            count = self._upgrades = self.http_requests.count("1xx")
        count.value += 1

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


_metrics: weakref.WeakKeyDictionary[web.Application, HubMetrics] = weakref.WeakKeyDictionary()

# The metrics of the hub app serving the current request (set by the request_context
# middleware); an RPC task started by a socket's handler inherits it.
current: ContextVar[HubMetrics | None] = ContextVar("hubbub_hub_metrics", default=None)


def metrics_of(app: web.Application) -> HubMetrics:
    """The metrics of the hub app ``app``, made on first use."""
    found = _metrics.get(app)
    if found is None:
        found = _metrics[app] = HubMetrics()
    return found
