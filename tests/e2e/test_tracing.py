"""Traces: one REST call is one trace across hub and worker (hubbub/tracing.py).

A real hub app and a real worker in this process, on the real NATS and PostgreSQL, with
an in-memory span exporter installed as the tracer: the HTTP request's span, the hub's
call span under it, the worker's span under that (carried by the ``traceparent`` NATS
header) and the SQL statement's span under the worker's, all in the trace the client's
own ``traceparent`` started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel
from sqlalchemy import text

from handlers.context import Context
from handlers.registry import Registry
from hub.app import create_app
from hubbub import tracing
from hubbub.config import Settings
from hubbub.contracts.operations import Access, Catalog, Http, Operation
from tests.support import ops
from workers.app import worker_running


class Nothing(BaseModel):
    pass


class Answer(BaseModel):
    answer: int


catalog = Catalog()
sql_op = catalog.add(
    Operation("test.trace_sql", Nothing, Answer, Access.PUBLIC, Http("GET", "/test/trace-sql"))
)
crash_op = catalog.add(
    Operation("test.trace_crash", Nothing, Answer, Access.PUBLIC, Http("GET", "/test/trace-crash"))
)
registry = Registry()


@registry.handler(sql_op)
async def run_sql(ctx: Context, params: Nothing) -> Answer:
    answer = await ctx.session.scalar(text("SELECT 41 + 1"))
    return Answer(answer=int(answer))


@registry.handler(crash_op)
async def run_crash(ctx: Context, params: Nothing) -> Answer:
    raise RuntimeError("a deliberate bug")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()
    provider.shutdown()


@pytest.fixture
async def traced_hub(
    settings: Settings, nc: Any, spans: InMemorySpanExporter, aiohttp_client: Any
) -> Any:
    """A hub and a worker started with tracing on (the worker's engine instrumented)."""
    async with worker_running(settings, ops.registry_with_tests().extend(registry)):
        yield await aiohttp_client(create_app(settings, ops.catalog_with_tests().extend(catalog)))


CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_rest_call_is_one_trace_from_the_hub_through_the_worker_to_the_sql(
    traced_hub: Any, spans: InMemorySpanExporter
) -> None:
    response = await traced_hub.get(
        "/api/v1/test/trace-sql", headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["answer"] == 42

    finished = spans.get_finished_spans()
    http = _one(finished, "GET /api/v1/test/trace-sql")
    call = _one(finished, "call test.trace_sql")
    worker = _one(finished, "worker test.trace_sql")
    sql = [
        s for s in finished if s.attributes and s.attributes.get("db.query.text") == "SELECT 41 + 1"
    ]
    assert len(sql) == 1, [(s.name, dict(s.attributes or {})) for s in finished]

    # One trace: the one the client's traceparent named.
    assert {format(s.context.trace_id, "032x") for s in (http, call, worker, sql[0])} == {
        CLIENT_TRACE
    }
    # Each span a child of the one before it, across the NATS hop.
    assert _parent_of(http) == int(CLIENT_SPAN, 16)
    assert _parent_of(call) == http.context.span_id
    assert _parent_of(worker) == call.context.span_id
    assert _parent_of(sql[0]) == worker.context.span_id
    assert sql[0].name == "SELECT"
    assert (http.kind, call.kind, worker.kind, sql[0].kind) == (
        SpanKind.SERVER,
        SpanKind.CLIENT,
        SpanKind.SERVER,
        SpanKind.CLIENT,
    )
    assert http.attributes is not None
    assert http.attributes["http.response.status_code"] == 200
    assert worker.attributes is not None
    assert worker.attributes["hubbub.request_id"] == response.headers["X-Request-Id"]


async def test_a_failed_handler_marks_the_worker_and_call_spans_as_errors(
    traced_hub: Any, spans: InMemorySpanExporter
) -> None:
    response = await traced_hub.get("/api/v1/test/trace-crash")
    assert response.status == 500

    finished = spans.get_finished_spans()
    worker = _one(finished, "worker test.trace_crash")
    call = _one(finished, "call test.trace_crash")
    http = _one(finished, "GET /api/v1/test/trace-crash")
    assert worker.status.status_code is StatusCode.ERROR
    assert worker.attributes is not None
    assert worker.attributes["hubbub.outcome"] == "internal"
    assert call.status.status_code is StatusCode.ERROR
    assert http.status.status_code is StatusCode.ERROR
    # Without a client traceparent the hub starts the trace; the worker is still in it.
    assert worker.context.trace_id == call.context.trace_id == http.context.trace_id
    assert http.parent is None


async def test_off_nothing_on_the_request_path_makes_a_span(
    hub_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a tracer the hub and the worker never ask for a span or a context."""
    assert tracing.tracer is None

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a span was asked for with tracing off")

    for name in ("start_span", "activate", "traceparent_of", "parent_from"):
        monkeypatch.setattr(tracing, name, forbidden)
    response = await hub_client.get("/api/v1/test/bad-reply")  # a worker round trip
    assert response.status == 502
    response = await hub_client.post("/api/v1/test/crash", json={"seq": 1})
    assert response.status == 200


async def test_configured_spans_are_exported_over_otlp_http(
    settings: Settings, aiohttp_server: Any
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT: the SDK's batch exporter posts protobuf to
    <endpoint>/v1/traces (here a fake collector on 127.0.0.1)."""
    received: list[tuple[str, bytes]] = []

    async def traces(request: web.Request) -> web.Response:
        received.append((request.headers.get("Content-Type", ""), await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    collector = await aiohttp_server(app, host="127.0.0.1")
    configured = settings.model_copy(
        update={"otlp_endpoint": f"http://127.0.0.1:{collector.port}/"}
    )
    assert tracing.tracer is None
    assert tracing.configure(configured, "hubbub-test")
    try:
        span = tracing.start_span("call test.export", kind=SpanKind.CLIENT)
        assert span is not None
        span.end()
    finally:
        # Shutting down flushes the batch; the exporter blocks (requests): not on the loop.
        await asyncio.to_thread(tracing.shutdown)
    assert tracing.tracer is None

    assert len(received) == 1
    content_type, body = received[0]
    assert content_type == "application/x-protobuf"
    exported = ExportTraceServiceRequest.FromString(body)
    resource = exported.resource_spans[0]
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "hubbub-test"
    assert [s.name for s in resource.scope_spans[0].spans] == ["call test.export"]
