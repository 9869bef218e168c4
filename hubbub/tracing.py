"""Traces with OpenTelemetry: one trace per call, from the HTTP request (or the socket's
RPC) through the NATS hop into the worker's handler and its SQL.

W3C trace context travels in the ``traceparent`` header of the NATS request
(``hubbub/contracts/envelope.py``): the hub's span of the call names itself there, and
the worker's span is its child. ``configure`` sets up the SDK when an OTLP endpoint is
set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``HUBBUB_OTLP_ENDPOINT``): spans are batched and
exported over OTLP/HTTP (protobuf) to ``<endpoint>/v1/traces`` from a thread of the SDK.

Off, the default, costs nothing per request: ``tracer`` is None, and the code on the
request path asks only that (one module attribute read) before making any span or
context. The process's own tracer provider is kept here, not installed as
OpenTelemetry's global one, so tests can install an in-memory exporter (``install``) and
take it away again (``uninstall``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

    from hubbub.config import Settings

log = logging.getLogger(__name__)

__all__ = [
    "Span",
    "SpanKind",
    "activate",
    "configure",
    "deactivate",
    "failed",
    "install",
    "parent_from",
    "shutdown",
    "start_span",
    "traceparent_of",
    "tracer",
    "uninstall",
]

TRACES_PATH = "/v1/traces"  # what the OTLP/HTTP spec appends to the endpoint for spans

# None: tracing is off. The request path reads only this.
tracer: Tracer | None = None
_provider: TracerProvider | None = None
_propagator = TraceContextTextMapPropagator()
_EMPTY = otel_context.Context()  # no parent: a new trace


def configure(settings: Settings, service_name: str, *, edge: bool = False) -> bool:
    """Trace to the configured OTLP collector, if one is; whether tracing is on.

    ``edge``: this process takes requests from outside (a hub), whose ``traceparent``
    joins the trace but does not decide the sampling: an outside caller could otherwise
    ask for every request to be traced. Inside (a worker), a traced call stays traced.

    Once per process (a second call keeps the first provider): hub and worker in one
    process (the tests) share it."""
    if tracer is not None:
        return True
    if not settings.otlp_endpoint:
        return False
    # Imported here: the exporter brings protobuf and requests, which a process that
    # does not trace has no use for.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=sampler(settings.trace_sample_ratio, edge=edge),
    )
    endpoint = settings.otlp_endpoint.rstrip("/") + TRACES_PATH
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    install(provider)
    log.info("tracing", extra={"otlp_endpoint": endpoint, "service": service_name})
    return True


def sampler(ratio: float, *, edge: bool) -> Sampler:
    """Sample ``ratio`` of new traces. At the ``edge`` a remote parent (the request's own
    ``traceparent``) is sampled by the same ratio, whatever it asks; inside, a traced
    call stays traced and an untraced one untraced."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    by_ratio = TraceIdRatioBased(ratio)
    if edge:
        return ParentBased(
            by_ratio, remote_parent_sampled=by_ratio, remote_parent_not_sampled=by_ratio
        )
    return ParentBased(by_ratio)


def install(provider: TracerProvider) -> None:
    """Trace with ``provider`` (the tests': an in-memory exporter) from now on."""
    global tracer, _provider
    _provider = provider
    tracer = provider.get_tracer("hubbub")


def uninstall() -> None:
    """Tracing off again (the provider is left to whoever made it)."""
    global tracer, _provider
    tracer = None
    _provider = None


def shutdown() -> None:
    """Export what is still batched and stop (a process's exit)."""
    provider = _provider
    uninstall()
    if provider is not None:
        provider.shutdown()


def parent_from(traceparent: str | None) -> otel_context.Context | None:
    """The context a ``traceparent`` header names (None: none, or malformed)."""
    if not traceparent:
        return None
    found = _propagator.extract({"traceparent": traceparent})
    if not trace.get_current_span(found).get_span_context().is_valid:
        return None
    return found


def start_span(
    name: str,
    *,
    traceparent: str | None = None,
    remote: bool = False,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, str | int] | None = None,
) -> Span | None:
    """A started span; None when tracing is off. Its parent: the current span, else the
    one ``traceparent`` names, else none (a new trace). ``remote``: only ``traceparent``
    counts (a worker's job, whatever its task's context holds)."""
    active = tracer
    if active is None:
        return None
    parent = None
    if remote or not trace.get_current_span().get_span_context().is_valid:
        parent = parent_from(traceparent) or _EMPTY
    return active.start_span(name, context=parent, kind=kind, attributes=attributes)


def failed(span: Span, outcome: str) -> None:
    """Mark ``span`` as ended in the error ``outcome`` (a Hubbub error code)."""
    span.set_attribute("hubbub.outcome", outcome)
    span.set_status(StatusCode.ERROR, outcome)


def activate(span: Span) -> object:
    """Make ``span`` the current one (what SQL spans and calls made meanwhile hang
    under); the token for ``deactivate``."""
    return otel_context.attach(trace.set_span_in_context(span))


def deactivate(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]


def traceparent_of(span: Span) -> str:
    """The W3C ``traceparent`` that makes the receiver's span a child of ``span``."""
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
