"""A worker's /metrics (HUBBUB_WORKER_METRICS_PORT): a real worker with its real actors,
relay and database, scraped over HTTP after real requests."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError
from nats.js.api import ConsumerConfig
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.embedded.process import free_port
from handlers.outbox import OutboxEvent
from hubbub.bus import Bus, new_request_id
from hubbub.config import Settings
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.errors import HubbubError, Unavailable
from hubbub.contracts.subjects import Subjects
from tests.support import ops
from tests.support.waiting import wait_for
from workers.actors import ActorSystem
from workers.app import RunningWorker, worker_running
from workers.metrics import WorkerMetrics


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_metrics_port": free_port()})


async def _scrape(settings: Settings, path: str = "/metrics") -> tuple[int, str, str]:
    url = f"http://{settings.admin_host}:{settings.worker_metrics_port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def _values(settings: Settings) -> dict[str, float]:
    """Each sample of a scrape by name (the series without labels)."""
    status, content_type, text = await _scrape(settings)
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_worker_exports_its_actors_and_outbox(
    settings: Settings, worker: RunningWorker, bus: Bus, db: async_sessionmaker[AsyncSession]
) -> None:
    for seq in range(3):
        reply = await bus.request(
            ops.echo, {"key": "metrics", "seq": seq}, caller=None, request_id=new_request_id()
        )
        assert reply.value.seq == seq
    for note in ("first", "second"):  # one outbox event each
        await bus.request(ops.emit, {"workspace": "metrics", "note": note}, caller=None)
    await wait_for(lambda: worker.relay.published == 2, what="both events published")

    values = await _values(settings)
    assert values["hubbub_worker_actors"] >= 1  # the echo's key, until passivated
    assert values["hubbub_worker_in_flight"] == 0
    assert values["hubbub_worker_mailbox_depth"] == 0
    assert values["hubbub_worker_mailbox_rejected_total"] == 0
    assert values["hubbub_outbox_published_total"] == 2
    assert values["hubbub_outbox_lag_seconds"] == 0  # read from the database: none waiting

    # With the relay stopped, an event committed a minute ago is a minute's lag.
    await worker.relay.stop()
    async with db() as session, session.begin():
        session.add(
            OutboxEvent(
                channel="workspace:metrics",
                event_type="note.added",
                payload={"note": "late"},
                created_at=func.now() - timedelta(seconds=60),
            )
        )
    values = await _values(settings)
    assert 60 <= values["hubbub_outbox_lag_seconds"] < 120
    assert values["hubbub_outbox_published_total"] == 2


async def test_anything_but_get_metrics_is_404_and_the_port_closes_with_the_worker(
    settings: Settings, nc: Any, worker_resources: Any
) -> None:
    async with worker_running(settings, ops.registry_with_tests(), resources=worker_resources):
        status, _, _ = await _scrape(settings, "/")
        assert status == 404
    with pytest.raises(aiohttp.ClientConnectionError):
        await asyncio.wait_for(_scrape(settings), 10)


async def test_handler_latency_by_operation_and_outcome(
    settings: Settings, worker: Any, bus: Bus
) -> None:
    for seq in range(4):
        await bus.request(ops.echo, {"key": "timed", "seq": seq}, caller=None)
    with pytest.raises(HubbubError) as failed:
        await bus.request(ops.crash, {"key": "timed", "seq": 0}, caller=None)
    assert failed.value.code.value == "internal"

    _, _, text = await _scrape(settings)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    handler = families["hubbub_worker_handler_seconds"]
    assert handler.type == "histogram"
    samples = {
        (s.name, s.labels["operation"], s.labels["outcome"], s.labels.get("le")): s.value
        for s in handler.samples
    }
    name = "hubbub_worker_handler_seconds"
    assert samples[(f"{name}_count", "test.echo", "ok", None)] == 4
    assert samples[(f"{name}_bucket", "test.echo", "ok", "+Inf")] == 4
    assert samples[(f"{name}_count", "test.crash", "internal", None)] == 1
    assert samples[(f"{name}_sum", "test.echo", "ok", None)] > 0
    # Cumulative buckets: never decreasing, the last one the count.
    buckets = [
        value
        for (sample, op, outcome, le), value in samples.items()
        if sample.endswith("_bucket") and op == "test.echo" and outcome == "ok"
    ]
    assert buckets == sorted(buckets)
    assert buckets[-1] == 4


async def _handler_counts(settings: Settings) -> dict[tuple[str, str], float]:
    """Each (operation, outcome)'s count of handled requests, as a scrape reads them."""
    _, _, text = await _scrape(settings)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {
        (s.labels["operation"], s.labels["outcome"]): s.value
        for s in families["hubbub_worker_handler_seconds"].samples
        if s.name == "hubbub_worker_handler_seconds_count"
    }


async def test_an_operation_s_internal_errors_are_counted_from_0_before_the_first_one(
    settings: Settings, worker: Any, bus: Bus
) -> None:
    # HubbubHandlerErrors reads increase() of this series: a series that first appears
    # at 1 increases by nothing, so its first internal error would never alert.
    await bus.request(ops.echo, {"key": "zero", "seq": 0}, caller=None)

    counts = await _handler_counts(settings)
    assert counts[("test.echo", "ok")] == 1
    assert counts[("test.echo", "internal")] == 0


async def test_a_fresh_worker_counts_internal_errors_from_0_for_operations_never_called(
    settings: Settings, worker: Any
) -> None:
    # A worker that serves an operation for the first time and fails it must alert
    # as well: the series is there from the worker's start, not from its first call.
    counts = await _handler_counts(settings)
    assert counts[("test.crash", "internal")] == 0
    assert {op.name for op, _ in ops.registry_with_tests()} <= {
        operation for operation, outcome in counts if outcome == "internal"
    }


async def test_jetstream_streams_and_consumer_lag_are_read_at_scrape_time(
    settings: Settings, worker: Any, nc: NATS
) -> None:
    subjects = Subjects(settings.namespace)
    stream = subjects.stream(ChannelKind.PUBLIC)
    js = nc.jetstream()
    for n in range(3):
        ack = await js.publish(subjects.event(Channel.parse("public:lag")), b'{"n":%d}' % n)
    # A consumer that has taken none of them: all three are its lag.
    await js.add_consumer(stream, ConsumerConfig(durable_name="lagging"))

    _, _, text = await _scrape(settings)
    values = {
        (sample.name, sample.labels.get("stream"), sample.labels.get("consumer")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert values[("hubbub_jetstream_up", None, None)] == 1
    assert values[("hubbub_jetstream_stream_last_sequence", stream, None)] == ack.seq
    assert values[("hubbub_jetstream_stream_messages", stream, None)] == 3
    assert values[("hubbub_jetstream_consumer_pending", stream, "lagging")] == 3
    assert values[("hubbub_jetstream_consumer_ack_pending", stream, "lagging")] == 0


async def test_jetstream_away_is_up_0_without_the_stream_series(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Away:
        async def stream_info(self, name: str) -> Any:
            raise ConnectionClosedError

    metrics = WorkerMetrics(
        ActorSystem(mailbox_size=1, max_in_flight=1, idle_timeout=1.0),
        None,  # type: ignore[arg-type]  # no database either: the outbox lag is left out
        js=Away(),  # type: ignore[arg-type]
        streams=["EVT_PUBLIC"],
    )
    text = (await metrics.exposition()).decode()
    assert "hubbub_jetstream_up 0.0" in text
    assert "hubbub_jetstream_stream_messages{" not in text
    assert "hubbub_outbox_lag_seconds " not in text
    assert not [r for r in caplog.records if r.exc_info]  # no traceback


async def test_a_job_refused_at_the_drain_deadline_is_answered_and_not_timed(
    settings: Settings, nc: NATS, bus: Bus, worker_resources: Any
) -> None:
    """The running job is cancelled (timed, ``unavailable``); the one queued behind it
    never started: it is answered all the same (``busy``, so the bus sends it to another
    worker; there is none here), and not timed."""
    async with worker_running(
        settings, ops.registry_with_tests(), resources=worker_resources
    ) as running:
        service = running.service
        slow = asyncio.ensure_future(
            bus.request(ops.echo, {"key": "q", "seq": 1, "delay": 5.0}, caller=None)
        )
        queued = asyncio.ensure_future(
            bus.request(ops.echo, {"key": "q", "seq": 2}, caller=None, timeout=3)
        )
        await wait_for(lambda: service.actors.in_flight == 2, what="both jobs taken")
        assert not await service.drain(timeout=0.2)
        with pytest.raises(Unavailable, match="shutting down"):
            await slow
        with pytest.raises(Unavailable, match="no worker is serving"):
            await queued
        timed = {key: sum(t.counts) for key, t in service.timings.series.items()}
        assert timed.get(("test.echo", "unavailable")) == 1
        assert timed.get(("test.echo", "ok"), 0) == 0
