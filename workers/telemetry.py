"""A worker's traces and error reports: what ``worker_running`` switches on from the
settings (hubbub/tracing.py, hubbub/error_reports.py), and the SQL spans.

SQL spans come from SQLAlchemy's own cursor events on the worker's engine, registered
only while tracing is on (an engine of a worker that does not trace has no listener, so
its queries pay nothing). A statement gets a span only inside a traced job (a current
span: the worker's ``worker <operation>`` span), so the relay's and the janitor's
polling make none. The span's name is the statement's verb (``SELECT``, ``INSERT``...);
its ``db.query.text`` the statement with its placeholders, never the parameters.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from hubbub import error_reports, tracing
from hubbub.config import Settings

SERVICE_NAME = "hubbub-worker"
MAX_STATEMENT_CHARS = 2000
_SPAN = "_hubbub_span"  # where a statement's span waits on its execution context


def configure(settings: Settings, name: str = "worker") -> None:
    tracing.configure(settings, SERVICE_NAME)
    error_reports.configure(settings, f"hubbub-{name}")


def shutdown() -> None:
    """Export the spans still batched, send the queued reports (blocks: a thread's)."""
    tracing.shutdown()
    error_reports.close()


def instrument_engine(engine: AsyncEngine) -> bool:
    """SQL spans for the statements of ``engine``, if tracing is on; whether it is."""
    if tracing.tracer is None:
        return False
    sync_engine = engine.sync_engine
    if not event.contains(sync_engine, "before_cursor_execute", _before):
        event.listen(sync_engine, "before_cursor_execute", _before)
        event.listen(sync_engine, "after_cursor_execute", _after)
        event.listen(sync_engine, "handle_error", _error)
    return True


def _before(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    active = tracing.tracer
    if active is None or not trace.get_current_span().get_span_context().is_valid:
        return  # tracing switched off since, or not inside a traced job
    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    span = active.start_span(
        verb,
        kind=trace.SpanKind.CLIENT,
        attributes={
            "db.system.name": "postgresql",
            "db.query.text": statement[:MAX_STATEMENT_CHARS],
        },
    )
    if context is not None:
        setattr(context, _SPAN, span)
    else:
        span.end()


def _after(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    span = getattr(context, _SPAN, None)
    if span is not None:
        setattr(context, _SPAN, None)
        span.end()


def _error(exception_context: ExceptionContext) -> None:
    span = getattr(exception_context.execution_context, _SPAN, None)
    if span is not None:
        setattr(exception_context.execution_context, _SPAN, None)
        tracing.failed(span, type(exception_context.original_exception).__name__)
        span.end()
