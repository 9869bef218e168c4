"""A worker's ``GET /metrics`` (``HUBBUB_WORKER_METRICS_PORT`` on ``HUBBUB_ADMIN_HOST``;
0: none): the Prometheus text exposition of ``prometheus_client``, read at scrape time
from what the worker holds, so nothing on the request path keeps it up to date.

* its actors: how many, messages in flight, queued messages (all mailboxes and the
  deepest), messages refused because a mailbox or the process was full;
* its handlers: latency by operation and outcome (``hubbub_worker_handler_seconds``,
  observed by workers/service.py as each job answers: the one thing kept on the
  request path, in series looked up once per operation, not per request);
* what it refused or could not send, counted as it happens: requests dropped (their
  reply subject is no reply inbox), requests refused because no hub signed their caller,
  answers over NATS's ``max_payload`` (sent as ``too_large``), by operation;
* the outbox: the age of the oldest event not yet published (one query a scrape, on the
  outbox's partial index of unpublished rows; the same for every worker, as the outbox
  is the database's), and what this worker's relay published or set aside;
* JetStream: each channel stream's messages and last sequence, and the pending counts of
  any consumer on those streams (not yet delivered; delivered, not yet acknowledged),
  asked at scrape time within ``JETSTREAM_TIMEOUT_S``; ``hubbub_jetstream_up`` says
  whether that worked (NATS away: 0, and the stream series are left out);
* its dependencies: ``hubbub_dependency_up`` 1 or 0 for PostgreSQL and Redis, as the
  worker's ``Health`` finds them; before each scrape the probe (``SELECT 1``, ``PING``)
  of each one not known to be down is run, so a quiet worker, whose requests may not
  touch Redis for a while, still shows its outage. A probe that finds no free pooled
  connection leaves it up: that dependency is saturated (logged as such), not down. One
  that gets no answer in its time (longer than the pools wait) puts it down.

Workers do not import aiohttp (tests/unit/test_layering.py): the server is a few lines
of asyncio streams that answer ``GET /metrics`` and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_left
from collections.abc import AsyncIterator, Iterator, Sequence
from itertools import accumulate
from typing import Final, NamedTuple

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo, StreamInfo
from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.outbox import OutboxEvent
from hubbub.dependencies import Health, Outage, Probe, probe_within
from hubbub.metric_buckets import LATENCY_BUCKETS
from workers.actors import ActorSystem
from workers.outages import classify
from workers.relay import OutboxRelay

log = logging.getLogger(__name__)

# No ``*_created`` series beside each histogram (as the hub: nothing reads them).
disable_created_metrics()  # type: ignore[no-untyped-call]


OUTBOX_QUERY_TIMEOUT_S = 2.0
JETSTREAM_TIMEOUT_S = 2.0  # for all of one scrape's stream and consumer queries
# For each dependency's probe before a scrape: longer than the pools' waits for a free
# connection (HUBBUB_DB_WAIT_S, 1 s, and HUBBUB_REDIS_POOL_TIMEOUT_S, 2 s, by default),
# so that a busy pool says so itself (saturated); a probe that times out met a server
# that does not answer.
DEPENDENCY_TIMEOUT_S = 3.0
HEAD_TIMEOUT_S = 5.0  # a scraper that does not finish its request head is cut off
MAX_HEAD_BYTES = 8192


HANDLER_SECONDS: Final = "hubbub_worker_handler_seconds"


class Timing:
    """One series of ``hubbub_worker_handler_seconds``: its bucket counts and sum.

    Kept by hand, not as a ``prometheus_client`` histogram child: its ``observe`` takes
    a lock and walks every bucket (~5 µs on this machine, against ~0.8 µs here), and
    this runs once a request. No lock is needed: only the event loop's thread observes
    and collects."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bound
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # The first bound >= seconds: Prometheus's ``le`` (less than or equal).
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class HandlerTimings(Collector):
    """``hubbub_worker_handler_seconds{operation,outcome}``: how long each job took,
    from its start in the actor to its answer (handler, transaction and commit).
    ``outcome`` is ``ok`` or the error code it answered with. One per worker service,
    in a registry of its own that ``WorkerMetrics`` serves."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], Timing] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def of(self, operation: str) -> OperationTimer:
        return OperationTimer(self, operation)

    def timing(self, operation: str, outcome: str) -> Timing:
        found = self.series.get((operation, outcome))
        if found is None:
            found = self.series[(operation, outcome)] = Timing()
        return found

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            HANDLER_SECONDS,
            "Handler latency, job start to answer, by operation and outcome (ok or the "
            "error code).",
            labels=["operation", "outcome"],
        )
        for (operation, outcome), timing in sorted(self.series.items()):
            cumulative = list(accumulate(timing.counts))
            buckets = [(_BOUNDS[i], float(cumulative[i])) for i in range(len(_BOUNDS))]
            family.add_metric([operation, outcome], buckets, timing.total)
        yield family


class Refusals(Collector):
    """Requests the worker would not serve, and answers it could not send, each counted
    by the service as it happens (a plain ``+= 1``: a scrape reads the numbers) — the
    throttled log lines say the same, at most once per 10 s; these add up.

    * ``hubbub_worker_dropped_requests``: neither run nor answered, their reply subject
      being no reply inbox;
    * ``hubbub_worker_unsigned_requests``: refused ``forbidden``, no hub having signed
      their caller;
    * ``hubbub_worker_too_large_replies{operation}``: answers over NATS's
      ``max_payload``, sent as ``too_large`` instead."""

    def __init__(self) -> None:
        self.dropped = 0
        self.unsigned = 0
        self.too_large: dict[str, int] = {}  # by operation

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "hubbub_worker_dropped_requests",
            "Requests neither run nor answered: their reply subject is no reply inbox.",
            self.dropped,
        )
        yield CounterMetricFamily(
            "hubbub_worker_unsigned_requests",
            "Requests refused (forbidden) because no hub signed their caller.",
            self.unsigned,
        )
        too_large = CounterMetricFamily(
            "hubbub_worker_too_large_replies",
            "Answers over NATS's max_payload, sent as too_large instead, by operation.",
            labels=["operation"],
        )
        for operation, count in sorted(self.too_large.items()):
            too_large.add_metric([operation], count)
        yield too_large


# The ``le`` labels as prometheus_client writes them (1.0, not 1).
_BOUNDS: Final = [
    floatToGoString(bound)  # type: ignore[no-untyped-call]
    for bound in LATENCY_BUCKETS
] + ["+Inf"]


# Outcomes whose series an alert reads with ``increase()`` (worker-alerts.yml): made at
# 0 with the operation's timer, since a series that first appears at 1 increases by
# nothing, and the first such error would not alert.
ALERTED_OUTCOMES: Final = ("internal",)


class OperationTimer:
    """One operation's series: ``ok`` and the alerted outcomes made at once, the other
    error outcomes on first use (a lookup by a built key, not once a request)."""

    __slots__ = ("_by_outcome", "_operation", "_timings", "ok")

    def __init__(self, timings: HandlerTimings, operation: str) -> None:
        self._timings = timings
        self._operation = operation
        self.ok = timings.timing(operation, "ok")
        self._by_outcome: dict[str, Timing] = {
            outcome: timings.timing(operation, outcome) for outcome in ALERTED_OUTCOMES
        }

    def outcome(self, outcome: str) -> Timing:
        child = self._by_outcome.get(outcome)
        if child is None:
            child = self._by_outcome[outcome] = self._timings.timing(self._operation, outcome)
        return child


class WorkerCollector(Collector):
    def __init__(self, actors: ActorSystem, relay: OutboxRelay | None) -> None:
        self.actors = actors
        self.relay = relay
        self.outbox_lag_s: float | None = None  # set by ``WorkerMetrics.refresh``
        self.jetstream: JetStreamState | None = None  # likewise; None: not asked, or failed
        self.asks_jetstream = False
        self.health: Health | None = None  # the worker's tracker: its dependencies up

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        actors = self.actors
        depths = [len(a.mailbox) for a in list(actors.actors.values())]
        yield GaugeMetricFamily("hubbub_worker_actors", "Live actors (keys).", len(depths))
        yield GaugeMetricFamily(
            "hubbub_worker_in_flight", "Messages queued or running.", actors.in_flight
        )
        yield GaugeMetricFamily(
            "hubbub_worker_mailbox_depth",
            "Messages in all actors' mailboxes (the running one included).",
            sum(depths),
        )
        yield GaugeMetricFamily(
            "hubbub_worker_mailbox_depth_max", "The deepest mailbox.", max(depths, default=0)
        )
        yield CounterMetricFamily(
            "hubbub_worker_mailbox_rejected",
            "Messages refused (unavailable) because a mailbox or the process was full.",
            actors.rejected,
        )
        if self.outbox_lag_s is not None:
            yield GaugeMetricFamily(
                "hubbub_outbox_lag_seconds",
                "Age of the oldest outbox event not yet published (0: none waiting).",
                self.outbox_lag_s,
            )
        if self.asks_jetstream:
            yield from _jetstream(self.jetstream)
        if self.health is not None:
            yield _dependencies(self.health)
        if self.relay is not None:
            yield CounterMetricFamily(
                "hubbub_outbox_published",
                "Outbox events this worker's relay published to JetStream.",
                self.relay.published,
            )
            yield CounterMetricFamily(
                "hubbub_outbox_set_aside",
                "Outbox events this worker's relay set aside (JetStream refused them).",
                self.relay.set_aside,
            )


def _dependencies(health: Health) -> Metric:
    """1 or 0 for each dependency the worker probes, and 0 for any other it saw go down."""
    family = GaugeMetricFamily(
        "hubbub_dependency_up",
        "Whether this worker finds a dependency working (1) or down (0).",
        labels=["dependency"],
    )
    for name in sorted(set(health.probes) | set(health.down)):
        family.add_metric([name], 0.0 if health.is_down(name) else 1.0)
    return family


class JetStreamState(NamedTuple):
    streams: list[StreamInfo]
    consumers: list[ConsumerInfo]


def _jetstream(state: JetStreamState | None) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "hubbub_jetstream_up",
        "Whether this worker's last scrape could ask JetStream (1) or not (0).",
        value=0.0 if state is None else 1.0,
    )
    if state is None:
        return
    messages = GaugeMetricFamily(
        "hubbub_jetstream_stream_messages", "Messages a channel stream holds.", labels=["stream"]
    )
    last = GaugeMetricFamily(
        "hubbub_jetstream_stream_last_sequence",
        "A channel stream's last sequence (its latest publication's offset).",
        labels=["stream"],
    )
    for info in state.streams:
        messages.add_metric([info.config.name or ""], info.state.messages)
        last.add_metric([info.config.name or ""], info.state.last_seq)
    pending = GaugeMetricFamily(
        "hubbub_jetstream_consumer_pending",
        "Messages of a channel stream a consumer has not been delivered yet.",
        labels=["stream", "consumer"],
    )
    ack_pending = GaugeMetricFamily(
        "hubbub_jetstream_consumer_ack_pending",
        "Messages delivered to a consumer of a channel stream and not acknowledged yet.",
        labels=["stream", "consumer"],
    )
    for consumer in state.consumers:
        labels = [consumer.stream_name, consumer.name]
        pending.add_metric(labels, consumer.num_pending or 0)
        ack_pending.add_metric(labels, consumer.num_ack_pending or 0)
    yield from (messages, last, pending, ack_pending)


class WorkerMetrics:
    def __init__(
        self,
        actors: ActorSystem,
        sessions: async_sessionmaker[AsyncSession],
        relay: OutboxRelay | None = None,
        timings: HandlerTimings | None = None,
        *,
        js: JetStreamContext | None = None,
        streams: Sequence[str] = (),
        health: Health | None = None,
    ) -> None:
        self.sessions = sessions
        self.health = health
        self.js = js
        self.streams = list(streams)  # the channel streams to report on
        self.collector = WorkerCollector(actors, relay)
        self.collector.asks_jetstream = js is not None
        self.collector.health = health
        # The service's handler latencies and what is read at scrape time, in one.
        self.registry = (timings or HandlerTimings()).registry
        self.registry.register(self.collector)

    async def refresh(self) -> None:
        await asyncio.gather(
            self.refresh_outbox(), self.refresh_jetstream(), self.refresh_dependencies()
        )

    async def refresh_dependencies(self) -> None:
        """Probe each dependency not known to be down, within ``DEPENDENCY_TIMEOUT_S``:
        one that fails is recorded down (its probe then watches for its return)."""
        health = self.health
        if health is None:
            return
        await asyncio.gather(
            *(
                self._probe(health, name, probe)
                for name, probe in health.probes.items()
                if not health.is_down(name)
            )
        )

    @staticmethod
    async def _probe(health: Health, name: str, probe: Probe) -> None:
        """A probe that finds no free pooled connection shows the dependency saturated;
        a connection-level failure, or no answer in time, puts it down."""
        try:
            await probe_within(probe, DEPENDENCY_TIMEOUT_S)
        except Exception as exc:
            # A pool with no free connection is saturated; refused, reset, no answer: down.
            outage = classify(exc)
            health.failed(Outage(name, down=outage is None or outage.down), exc)

    async def refresh_jetstream(self) -> None:
        """Ask JetStream for the streams and their consumers; failing: ``up`` 0."""
        js = self.js
        if js is None:
            return
        try:
            async with asyncio.timeout(JETSTREAM_TIMEOUT_S):
                infos = await asyncio.gather(*(js.stream_info(name) for name in self.streams))
                consumers: list[ConsumerInfo] = []
                for info in infos:
                    if info.state.consumer_count:
                        consumers.extend(await js.consumers_info(info.config.name or ""))
            self.collector.jetstream = JetStreamState(list(infos), consumers)
        except Exception as exc:  # NATS away or slow: no figures this time, no traceback
            log.debug("jetstream state unknown: %s: %s", type(exc).__name__, exc)
            self.collector.jetstream = None

    async def refresh_outbox(self) -> None:
        """Read the outbox lag; without the database the series is left out (not 0)."""
        try:
            async with asyncio.timeout(OUTBOX_QUERY_TIMEOUT_S), self.sessions() as session:
                lag = await session.scalar(
                    select(
                        func.coalesce(
                            func.extract("epoch", func.now() - func.min(OutboxEvent.created_at)),
                            0,
                        )
                    ).where(OutboxEvent.published_at.is_(None), OutboxEvent.failed_at.is_(None))
                )
            self.collector.outbox_lag_s = max(float(lag or 0), 0.0)
        except Exception as exc:
            log.debug("outbox lag unknown: %s: %s", type(exc).__name__, exc)
            self.collector.outbox_lag_s = None

    async def exposition(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method, path, *_ = [*head.split(b" ", 2), b"", b""]
            if method == b"GET" and path.split(b"?")[0] == b"/metrics":
                status, content_type, body = (
                    b"200 OK",
                    CONTENT_TYPE_PLAIN_0_0_4.encode(),
                    await self.exposition(),
                )
            else:
                status, content_type, body = b"404 Not Found", b"text/plain", b"not found\n"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + content_type
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # not a request worth an answer
        except ConnectionError:
            pass
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def serving(self, host: str, port: int) -> AsyncIterator[asyncio.Server]:
        """Answer ``GET /metrics`` on ``host:port`` while the block runs."""
        server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD_BYTES)
        log.info("worker metrics", extra={"host": host, "port": port})
        try:
            yield server
        finally:
            server.close()
            await server.wait_closed()
