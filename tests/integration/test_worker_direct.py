"""The worker takes requests as nats-py reads them and writes its replies into nats-py's
buffer — over a real NATS connection.

It leans on what nats-py's client does today (workers/service.py): its message processing
hands each message of a subscription to the subscription's pending queue with
``put_nowait``, and a publish is a PUB command appended to its pending buffer, which
``hubbub/nats_direct.py`` writes at the end of the loop turn. The first test fails when a
nats-py release changes either.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest
from nats.aio.client import Client as NATS
from pydantic import BaseModel

from handlers.context import Context
from handlers.registry import Registry
from hubbub.config import Settings
from hubbub.contracts.envelope import H_ERROR
from hubbub.contracts.operations import Access, Operation
from hubbub.contracts.subjects import Subjects
from hubbub.log_every import LogEvery
from hubbub.nats_reader import RawDispatch
from hubbub.natsconn import connect_nats
from tests.support.waiting import wait_for
from workers.service import WorkerService


class Said(BaseModel):
    text: str


class Sized(BaseModel):
    size: int


SAY = Operation("test.say", Said, Said, Access.PUBLIC)
# Answers with ``size`` characters of text: a reply as large as asked for.
BIG = Operation("test.big", Sized, Said, Access.PUBLIC, read_only=True)
# The same, as a change: it records that it ran (applied) before it answers.
GROW = Operation("test.grow", Sized, Said, Access.PUBLIC, mutating=True)
registry = Registry()
said: list[str] = []  # what ``say`` was asked, in order
grown: list[int] = []  # what ``grow`` applied


@registry.handler(SAY)
async def say(ctx: Context, params: Said) -> Said:
    said.append(params.text)
    return Said(text="re:" + params.text)


@registry.handler(BIG)
async def big(ctx: Context, params: Sized) -> Said:
    return Said(text="x" * params.size)


@registry.handler(GROW)
async def grow(ctx: Context, params: Sized) -> Said:
    grown.append(params.size)
    return Said(text="x" * params.size)


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[WorkerService]:
    conn = await connect_nats(settings.nats_url or "", "test-worker")
    svc = WorkerService(
        settings=settings,
        registry=registry,
        nc=conn,
        sessions=cast(Any, object()),  # the operation touches no database or Redis
        redis=cast(Any, object()),
    )
    await svc.start()
    yield svc
    await svc.drain(5)
    await conn.close()


def _request(settings: Settings, text: str) -> tuple[str, bytes]:
    subject = Subjects(settings.namespace).service(SAY.name)
    return subject, orjson.dumps({"params": {"text": text}, "caller": None, "request_id": "r"})


def _warnings(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "workers.service" and r.levelno == logging.WARNING and words in r.message
    ]


def _counted(worker: WorkerService, name: str, **labels: str) -> float | None:
    """A counter of the worker's /metrics (its registry, as a scrape reads it)."""
    return worker.timings.registry.get_sample_value(f"{name}_total", labels)


async def test_requests_and_replies_skip_the_subscriptions_task_and_publish(
    worker: WorkerService, nc: NATS, settings: Settings
) -> None:
    assert worker._sub is not None
    # Taken as nats-py reads them, as bytes (no Msg) when hubbub's reader reads them.
    assert type(worker._sub._pending_queue) is RawDispatch
    assert worker._reply_loop is not None  # replies go into nats-py's buffer (publish_now)

    async def publish(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a reply went through Client.publish")

    worker.nc.publish = publish  # type: ignore[method-assign]
    try:
        subject, body = _request(settings, "hello")
        reply = await nc.request(subject, body, timeout=5)
    finally:
        del worker.nc.publish  # the client's own again
    assert orjson.loads(reply.data) == {"text": "re:hello"}
    assert not reply.headers


async def test_a_request_with_headers_comes_as_a_msg_and_is_answered_alike(
    worker: WorkerService, nc: NATS, settings: Settings
) -> None:
    """nats-py's own processing takes a message with headers (a traceparent): the
    worker gets it as a ``Msg``, and answers it as any other."""
    subject, body = _request(settings, "with headers")
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    reply = await nc.request(subject, body, timeout=5, headers={"traceparent": traceparent})
    assert orjson.loads(reply.data) == {"text": "re:with headers"}
    assert not reply.headers


async def test_a_refused_request_is_answered_with_its_error(
    worker: WorkerService, nc: NATS, settings: Settings
) -> None:
    subject, _ = _request(settings, "x")
    reply = await nc.request(subject, b"not json", timeout=5)
    assert reply.headers is not None
    assert reply.headers[H_ERROR] == "bad_request"
    reply = await nc.request(subject, orjson.dumps({"params": {"text": 1}}), timeout=5)
    assert reply.headers is not None
    assert reply.headers[H_ERROR] == "validation_failed"


async def test_a_request_that_breaks_the_worker_never_reaches_nats_py(
    worker: WorkerService, nc: NATS, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure while taking a request is logged; the connection and the subscription
    go on (nats-py's read loop would end the connection on an exception)."""
    subject, body = _request(settings, "first")
    await nc.request(subject, body, timeout=5)  # the route exists from here on
    route = worker._routes[SAY.name]
    validate = route.validate

    def broken(_: Any) -> Any:
        route.validate = validate  # the next request is taken again
        raise RuntimeError("a bug while taking a request")

    route.validate = broken
    with caplog.at_level(logging.ERROR, logger="workers.service"):
        await nc.publish(subject, body, reply=nc.new_inbox())  # no one waits for it
        reply = await nc.request(subject, _request(settings, "after")[1], timeout=5)
    assert orjson.loads(reply.data) == {"text": "re:after"}
    assert worker.nc.is_connected
    assert "a request could not be taken" in caplog.text


async def test_a_reply_over_nats_max_payload_is_answered_too_large_and_logged_once(
    worker: WorkerService, nc: NATS, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """NATS would refuse it (the caller would wait out its deadline): the caller hears
    ``too_large`` at once, told to ask for less, and the log has one line — no traceback,
    and no second line for the next one soon after."""
    subject = Subjects(settings.namespace).service(BIG.name)
    body = orjson.dumps({"params": {"size": nc.max_payload}, "caller": None, "request_id": "b"})
    with caplog.at_level(logging.INFO, logger="workers.service"):
        for _ in range(2):
            reply = await nc.request(subject, body, timeout=5)
            assert reply.headers is not None
            assert reply.headers[H_ERROR] == "too_large"
            error = orjson.loads(reply.data)
            assert error["status"] == 413
            assert "smaller page" in error["message"]
    lines = _warnings(caplog, "max_payload")
    assert len(lines) == 1
    assert _counted(worker, "hubbub_worker_too_large_replies", operation=BIG.name) == 2
    assert lines[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # A reply that fits goes out as before.
    small = orjson.dumps({"params": {"size": 3}, "caller": None, "request_id": "s"})
    assert orjson.loads((await nc.request(subject, small, timeout=5)).data) == {"text": "xxx"}


async def test_a_change_whose_answer_is_over_max_payload_says_it_was_applied(
    worker: WorkerService, nc: NATS, settings: Settings
) -> None:
    """The handler has run (and committed) before its answer is found too large: the
    caller is told the change was applied and to read it back — not to ask for less,
    which a retry (replaying the stored answer) could never satisfy."""
    subject = Subjects(settings.namespace).service(GROW.name)
    grown.clear()
    body = orjson.dumps({"params": {"size": nc.max_payload}, "caller": None, "request_id": "g"})
    reply = await nc.request(subject, body, timeout=5)
    assert reply.headers is not None
    assert reply.headers[H_ERROR] == "too_large"
    error = orjson.loads(reply.data)
    assert error["details"]["applied"] is True
    assert "the change was applied" in error["message"]
    assert "read the result back" in error["message"]
    assert grown == [nc.max_payload]


@pytest.mark.parametrize("where", ["ctl.user.someone", "svc.users.update", "$JS.API.STREAM.LIST"])
async def test_a_request_whose_reply_subject_is_no_inbox_is_dropped(
    worker: WorkerService,
    nc: NATS,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    """A worker may publish where a hub may not (``ctl.>``, ``svc.>``, ``$JS.API.>``):
    a request naming such a subject as its reply is neither run nor answered there."""
    target = f"{settings.namespace}.{where}" if not where.startswith("$") else where
    watch = await nc.subscribe(target)
    subject, _ = _request(settings, "x")
    said.clear()
    with caplog.at_level(logging.INFO, logger="workers.service"):
        for n in range(2):
            await nc.publish(subject, _request(settings, f"stray {n}")[1], reply=target)
        # The sentinel: answered after the two, through the same worker and connection.
        reply = await nc.request(subject, _request(settings, "sentinel")[1], timeout=5)
    assert orjson.loads(reply.data) == {"text": "re:sentinel"}
    assert said == ["sentinel"]  # the strays never ran
    assert watch.pending_msgs == 0  # and nothing was published where they pointed
    assert len(_warnings(caplog, "not a reply inbox")) == 1  # one line for both
    assert _counted(worker, "hubbub_worker_dropped_requests") == 2  # and each counted


async def test_the_count_of_dropped_requests_is_logged_when_its_period_ends(
    worker: WorkerService, nc: NATS, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The first stray is logged at once; those after it are counted, and their count is
    logged when the period ends, without waiting for yet another stray."""
    worker._stray_log = LogEvery(0.2)
    subject, _ = _request(settings, "x")
    target = f"{settings.namespace}.ctl.user.someone"
    with caplog.at_level(logging.INFO, logger="workers.service"):
        for n in range(3):
            await nc.publish(subject, _request(settings, f"stray {n}")[1], reply=target)
        await nc.request(subject, _request(settings, "sentinel")[1], timeout=5)
        assert [r.__dict__["count"] for r in _warnings(caplog, "not a reply inbox")] == [1]
        await wait_for(
            lambda: len(_warnings(caplog, "not a reply inbox")) == 2, what="the second line"
        )
    assert [r.__dict__["count"] for r in _warnings(caplog, "not a reply inbox")] == [1, 2]


async def test_a_caller_no_hub_signed_is_refused_before_its_params_are_looked_at(
    worker: WorkerService, nc: NATS, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """An unsigned caller hears ``forbidden``, not which of its params are wrong, and
    a stream of them logs one line."""
    subject, _ = _request(settings, "x")
    unsigned = {"kind": "user", "user_id": "someone"}
    with caplog.at_level(logging.INFO, logger="workers.service"):
        for params in ({"text": 1}, {"text": "fine"}):
            envelope = {"params": params, "caller": unsigned, "request_id": "u"}
            reply = await nc.request(subject, orjson.dumps(envelope), timeout=5)
            assert reply.headers is not None
            assert reply.headers[H_ERROR] == "forbidden"
            assert "details" not in orjson.loads(reply.data)
    assert len(_warnings(caplog, "no hub signed")) == 1
    assert _counted(worker, "hubbub_worker_unsigned_requests") == 2
