"""Logging: one JSON object per line, carrying the request id of the work in progress.

The request id lives in a context variable: the hub sets it per request, sends it in the
envelope's ``request_id`` field, and the worker sets it again around the handler, so a
request's lines can be found in every process it touched.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# PostgreSQL's DETAIL of a failed statement quotes the row's values — a duplicate key
# (``Key (email)=(bob@example.com) already exists``), a row that breaks a constraint
# (``Failing row contains (…, $argon2id…)``) — and asyncpg puts it in its error's text,
# which tracebacks, log lines and error reports carry. It is cut out of all of them
# (up to the next part of the text: a HINT, the statement, the next traceback). Other
# DETAILs name no values and stay: a deadlock's says which processes waited for what.
ROW_VALUES = (
    (
        re.compile(
            r"DETAIL:  (?:Key \(|Failing row contains ).*?"
            r"(?=\n\n|\n(?:HINT:|\[SQL|\(Background on|Traceback |The above |During handling )|\Z)",
            re.DOTALL,
        ),
        "DETAIL:  [row values removed]",
    ),
    # The same DETAIL as an exception's whole text (SQLAlchemy's adapter raises one that
    # carries only it). At a line's start only: a scan per line, never per occurrence.
    (
        re.compile(
            r"^Key \(([^)\n]*)\)=\(.*?\)(?= already exists| is not present| conflicts)", re.M
        ),
        r"Key (\1)=([row values removed])",
    ),
    (re.compile(r"^Failing row contains .*$", re.M), "Failing row contains [row values removed]"),
)
_ROW_VALUE_MARKS = ("Key (", "Failing row contains ")


def without_row_values(text: str) -> str:
    """``text`` without the row values a database error quotes (``ROW_VALUES``)."""
    if not any(mark in text for mark in _ROW_VALUE_MARKS):
        return text  # the usual case: one substring search each
    for pattern, replacement in ROW_VALUES:
        text = pattern.sub(replacement, text)
    return text


_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


def install_request_id_factory() -> None:
    """Stamp every log record with the request id current when it was made (formatting
    may happen later, elsewhere). Idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_hubbub", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        # Underscored, so a caller's own `extra={"request_id": ...}` never collides.
        record._request_id = request_id_var.get()
        return record

    factory._hubbub = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "proc": self.process_name,
            "msg": without_row_values(record.getMessage()),
        }
        request_id = getattr(record, "_request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = without_row_values(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, process_name: str) -> None:
        super().__init__(f"%(asctime)s {process_name} %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = without_row_values(super().format(record))
        request_id = getattr(record, "_request_id", None)
        return f"{line} [{request_id}]" if request_id else line


def setup_logging(process_name: str, level: str = "INFO", fmt: str = "json") -> None:
    install_request_id_factory()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(process_name) if fmt == "json" else TextFormatter(process_name)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access logger is replaced by the hub's JSON access log.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("nats").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
