"""A worker's ``GET /metrics`` (``HUBBUB_WORKER_METRICS_PORT`` on ``HUBBUB_ADMIN_HOST``;
0: none): the Prometheus text exposition of ``prometheus_client``, read at scrape time
from what the worker holds, so nothing on the request path keeps it up to date.

* its actors: how many, messages in flight, queued messages (all mailboxes and the
  deepest), messages refused because a mailbox or the process was full;
* the outbox: the age of the oldest event not yet published (one query a scrape, on the
  outbox's partial index of unpublished rows; the same for every worker, as the outbox
  is the database's), and what this worker's relay published or set aside.

Workers do not import aiohttp (tests/unit/test_layering.py): the server is a few lines
of asyncio streams that answer ``GET /metrics`` and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.outbox import OutboxEvent
from workers.actors import ActorSystem
from workers.relay import OutboxRelay

log = logging.getLogger(__name__)

OUTBOX_QUERY_TIMEOUT_S = 2.0
HEAD_TIMEOUT_S = 5.0  # a scraper that does not finish its request head is cut off
MAX_HEAD_BYTES = 8192


class WorkerCollector(Collector):
    def __init__(self, actors: ActorSystem, relay: OutboxRelay | None) -> None:
        self.actors = actors
        self.relay = relay
        self.outbox_lag_s: float | None = None  # set by ``WorkerMetrics.refresh``

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


class WorkerMetrics:
    def __init__(
        self,
        actors: ActorSystem,
        sessions: async_sessionmaker[AsyncSession],
        relay: OutboxRelay | None = None,
    ) -> None:
        self.sessions = sessions
        self.collector = WorkerCollector(actors, relay)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self.collector)

    async def refresh(self) -> None:
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
