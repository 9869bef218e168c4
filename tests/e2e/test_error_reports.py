"""Error reports to Sentry (hubbub/error_reports.py): ``SENTRY_DSN`` pointed at a fake
ingest server on 127.0.0.1 (aiohttp), a hub and a worker in this process, one REST call
whose handler fails on purpose: exactly one event arrives, tagged with the request id,
the operation and the user, and with no password or token in it."""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import sentry_sdk
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from handlers.db import create_engine
from hub.app import create_app
from hubbub import error_reports
from hubbub.config import Settings
from hubbub.logs import JsonFormatter, TextFormatter
from tests.support import ops
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for
from workers.app import worker_running


class FakeIngest:
    """Sentry's envelope endpoint: keeps each item of each envelope it is sent."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.items: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def envelope(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp undoes the SDK's gzip
        self.raw.append(body)
        lines = body.split(b"\n")
        # The envelope's header line, then each item: its header line and its payload.
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if header.strip():
                self.items.append((orjson.loads(header), orjson.loads(payload)))
        return web.json_response({"id": uuid.uuid4().hex})

    def events(self) -> list[dict[str, Any]]:
        return [payload for header, payload in self.items if header.get("type") == "event"]


# A user's row as a failed insert would carry it. Kept here, far from the test: the
# report quotes the lines around each frame, and those must not be what is found.
A_USERS_EMAIL = "bob@example.com"
A_USERS_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
ANOTHER_EMAIL = "carol@example.com"


@pytest.fixture
async def ingest(aiohttp_server: Any) -> AsyncIterator[tuple[FakeIngest, str]]:
    fake = FakeIngest()
    app = web.Application()
    app.router.add_post("/api/{project}/envelope/", fake.envelope)
    server = await aiohttp_server(app, host="127.0.0.1")
    yield fake, f"http://public@127.0.0.1:{server.port}/42"
    error_reports.close()


@pytest.fixture
def reporting(settings: Settings, ingest: tuple[FakeIngest, str]) -> Settings:
    return settings.model_copy(update={"sentry_dsn": ingest[1]})


async def test_a_failing_handler_is_one_event_with_its_request_operation_and_user(
    reporting: Settings, ingest: tuple[FakeIngest, str], nc: Any, aiohttp_client: Any
) -> None:
    fake, _ = ingest
    user_id = str(uuid.uuid4())
    token = TestTokens(reporting).issue(user_id)
    async with worker_running(reporting, ops.registry_with_tests()):
        assert error_reports.configure(reporting, "hubbub-hub")  # as `hubbub serve` does
        hub = await aiohttp_client(create_app(reporting, ops.catalog_with_tests()))
        response = await hub.post(
            "/api/v1/test/crash",
            json={"key": "k", "seq": 0, "payload": {"password": "hunter2-secret"}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 500
        request_id = response.headers["X-Request-Id"]
        # The worker logged the failure before it answered. A sentinel behind it in the
        # SDK's queue (one thread sends in order): once it is in, so is all before it.
        sentinel = sentry_sdk.capture_message("sentinel", level="error")
        # Flushing blocks (the SDK sends from its own thread): not on the loop.
        await asyncio.to_thread(sentry_sdk.flush, 10)
        await wait_for(
            lambda: any(e.get("event_id") == sentinel for e in fake.events()),
            what="the sentinel event",
        )

    events = [e for e in fake.events() if e.get("event_id") != sentinel]
    assert len(events) == 1, events
    event = events[0]
    assert event["tags"]["request_id"] == request_id
    assert event["tags"]["operation"] == "test.crash"
    assert event["tags"]["user_id"] == user_id
    assert event["user"] == {"id": user_id}
    assert event["tags"]["component"] == "hubbub-worker"
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "RuntimeError"
    assert "boom" in exception["value"]
    everything = b"".join(fake.raw)
    assert token.encode() not in everything
    assert b"hunter2" not in everything


async def test_a_failed_statement_reports_no_email_address_nor_password_hash(
    reporting: Settings, ingest: tuple[FakeIngest, str]
) -> None:
    """SQLAlchemy writes a statement's parameters into its error's text unless told
    not to: a failed insert of a user would send the address and the hash."""
    fake, _ = ingest
    assert error_reports.configure(reporting, "hubbub-worker")
    engine = create_engine(reporting.database_url or "")
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as failed:
                await conn.execute(
                    text("INSERT INTO no_such_table (email, password_hash) VALUES (:e, :h)"),
                    {"e": A_USERS_EMAIL, "h": A_USERS_HASH},
                )
    finally:
        await engine.dispose()
    reported = sentry_sdk.capture_exception(failed.value)
    await asyncio.to_thread(sentry_sdk.flush, 10)
    await wait_for(
        lambda: any(e.get("event_id") == reported for e in fake.events()),
        what="the report",
    )
    everything = b"".join(fake.raw)
    assert b"no_such_table" in everything  # the statement is there, its values are not
    assert b"@example.com" not in everything
    assert b"$argon2" not in everything


async def _violations(settings: Settings) -> list[DBAPIError]:
    """A real UNIQUE and a real NOT NULL violation on a row of a user's address and
    password hash: PostgreSQL's DETAIL quotes the key, or the whole failing row."""
    engine = create_engine(settings.database_url or "")
    failures: list[DBAPIError] = []
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text(
                    "CREATE TEMP TABLE people"
                    " (email text UNIQUE, password_hash text, name text NOT NULL)"
                )
            )
            insert = text("INSERT INTO people VALUES (:e, :h, :n)")
            await conn.execute(insert, {"e": A_USERS_EMAIL, "h": A_USERS_HASH, "n": "Bob"})
            for name in ("Bob", None):  # the address again; then no name
                email = A_USERS_EMAIL if name else ANOTHER_EMAIL
                with pytest.raises(DBAPIError) as failed:
                    async with conn.begin_nested():
                        await conn.execute(insert, {"e": email, "h": A_USERS_HASH, "n": name})
                failures.append(failed.value)
    finally:
        await engine.dispose()
    return failures


async def test_a_constraint_violation_reports_no_email_address_nor_password_hash(
    reporting: Settings, ingest: tuple[FakeIngest, str]
) -> None:
    """asyncpg adds PostgreSQL's DETAIL to its error's text (``Key (email)=(...) already
    exists``, ``Failing row contains (...)``): hide_parameters does not touch it."""
    fake, _ = ingest
    failures = await _violations(reporting)
    # What there is to remove: the chained asyncpg error's text has it.
    assert all("DETAIL" in "".join(traceback.format_exception(f)) for f in failures)
    assert error_reports.configure(reporting, "hubbub-worker")
    for failure in failures:
        try:
            raise RuntimeError("the handler failed") from failure  # a chained report
        except RuntimeError:
            logging.getLogger("tests.handler").exception("a handler failed")
    sentinel = sentry_sdk.capture_message("sentinel", level="error")
    await asyncio.to_thread(sentry_sdk.flush, 10)
    await wait_for(
        lambda: any(e.get("event_id") == sentinel for e in fake.events()),
        what="the sentinel event",
    )
    everything = b"".join(fake.raw)
    assert b"duplicate key value violates unique constraint" in everything
    assert b"violates not-null constraint" in everything
    assert b"example.com" not in everything
    assert b"$argon2" not in everything


async def test_a_constraint_violation_is_logged_without_the_row_s_values(
    settings: Settings,
) -> None:
    failures = await _violations(settings)
    for formatter in (JsonFormatter("worker"), TextFormatter("worker")):
        for failure in failures:
            try:
                raise RuntimeError("the handler failed") from failure
            except RuntimeError:
                record = logging.LogRecord(
                    "h", logging.ERROR, __file__, 1, "failed: %s", (failure,), sys.exc_info()
                )
            line = formatter.format(record)
            if isinstance(formatter, JsonFormatter):
                assert "DETAIL" in orjson.loads(line)["exc"]  # still one whole JSON line
            assert "violates" in line
            assert "example.com" not in line
            assert "$argon2" not in line


def test_scrubbing_removes_secrets_by_key_and_in_text() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl"
    event: Any = {
        "message": f"login for bob password=hunter2 with Bearer {token} failed",
        "extra": {
            "op": "auth.login",
            "user_id": "u-1",
            "password": "hunter2",
            "new_password": "swordfish",
            "refresh_token": "r-123",
            "database_url": "postgresql://hubbub:s3cret@db:5432/hubbub",
            "nested": {"Authorization": "Bearer abc", "api_key": "k-1", "count": 3},
            "session_key": "sk-9",
            "keyboard": "not a secret",
        },
        "request": {"headers": [["Authorization", "Bearer abc"], ["Accept", "*/*"]]},
        "exception": {"values": [{"type": "ValueError", "value": f"bad token {token}"}]},
    }
    scrubbed = error_reports.scrub(event, None)
    text = orjson.dumps(scrubbed).decode()
    for secret in ("hunter2", "swordfish", "r-123", "s3cret", token, "abc", "k-1", "sk-9"):
        assert secret not in text, secret
    assert scrubbed["tags"] == {"operation": "auth.login", "user_id": "u-1"}
    extra: Any = scrubbed["extra"]
    assert extra["nested"]["count"] == 3
    assert extra["keyboard"] == "not a secret"
    assert extra["database_url"] == "postgresql://hubbub:[Filtered]@db:5432/hubbub"
    request: Any = scrubbed["request"]
    assert request["headers"][1] == ["Accept", "*/*"]
    assert scrubbed["exception"]["values"][0]["type"] == "ValueError"


def test_without_a_dsn_nothing_is_configured(settings: Settings) -> None:
    assert settings.sentry_dsn is None
    assert error_reports.configure(settings, "hubbub-hub") is False
