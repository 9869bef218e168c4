"""Who decides whether a request is traced: at the hub (the edge) the sample ratio, even
when the request's own ``traceparent`` asks for tracing; in a worker, the hub's decision."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from hubbub.tracing import sampler

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C


def remote_parent(sampled: bool) -> object:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span = NonRecordingSpan(SpanContext(TRACE_ID, 0xB7AD6B7169203331, True, flags))
    return trace.set_span_in_context(span)


def decision(edge: bool, ratio: float, parent_sampled: bool) -> Decision:
    result = sampler(ratio, edge=edge).should_sample(
        remote_parent(parent_sampled),  # type: ignore[arg-type]
        TRACE_ID,
        "GET /api/v1/users/me",
    )
    return result.decision


def test_at_the_edge_a_caller_that_asks_for_tracing_gets_the_ratio() -> None:
    assert decision(edge=True, ratio=0.0, parent_sampled=True) is Decision.DROP
    assert decision(edge=True, ratio=1.0, parent_sampled=False) is Decision.RECORD_AND_SAMPLE


def test_inside_a_traced_call_stays_traced_and_an_untraced_one_untraced() -> None:
    assert decision(edge=False, ratio=0.0, parent_sampled=True) is Decision.RECORD_AND_SAMPLE
    assert decision(edge=False, ratio=1.0, parent_sampled=False) is Decision.DROP
