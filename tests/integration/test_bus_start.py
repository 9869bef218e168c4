"""``Bus.start``: a request without a task, answered through a callback — over real NATS
and a real worker, with the same outcomes as ``Bus.request``.

It leans on what nats-py's client does today (hubbub/replies.py): a publish is a PUB
command appended to its pending buffer and a wake-up of its flusher, and its message
processing hands each message of a subscription to the subscription's pending queue with
``put_nowait``. The first test fails when a nats-py release changes either.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from hubbub.bus import Bus, Reply
from hubbub.contracts.errors import BadGateway, Timeout, Unavailable
from hubbub.replies import Replies
from tests.support import ops
from tests.support.ops import EchoResult
from workers.app import RunningWorker


class Outcome:
    """What a callback was called with, and how many times."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, BaseException | None]] = []
        self.done = asyncio.Event()

    def __call__(self, value: Any, error: BaseException | None) -> None:
        self.calls.append((value, error))
        self.done.set()

    async def one(self) -> tuple[Any, BaseException | None]:
        await asyncio.wait_for(self.done.wait(), 10)
        [call] = self.calls
        return call


async def test_replies_come_straight_from_nats_py_message_processing(nc: NATS) -> None:
    """Each request goes into nats-py's pending buffer, not through ``Client.publish``;
    each reply reaches its request from nats-py's own processing of the message: the
    subscription's fallback callback (a task reading a queue) is never used."""
    subject = "test.replies.direct"
    reply_with = nc.publish  # the responder's own publish, as any client's

    async def answer(msg: Msg) -> None:
        await reply_with(msg.reply, b"re:" + msg.data)

    await nc.subscribe(subject, cb=answer)
    replies = Replies(nc)
    await replies.open()
    assert replies.direct
    assert replies._direct_publish

    async def fallback(msg: Msg) -> None:
        raise AssertionError("a reply went through the subscription's task")

    async def publish(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a request went through Client.publish")

    replies._on_reply = fallback  # type: ignore[method-assign]
    nc.publish = publish  # type: ignore[method-assign]
    try:
        outcomes = [Outcome() for _ in range(3)]
        for i, outcome in enumerate(outcomes):
            replies.start(subject, b"%d" % i, outcome, timeout=5)
            assert outcome.calls == []  # never from within start
        assert not replies._publishing  # every publish finished at once
        answers = [await outcome.one() for outcome in outcomes]
    finally:
        del nc.publish  # the client's own again, for the fixture's teardown
    assert [(msg.data, error) for msg, error in answers] == [
        (b"re:0", None),
        (b"re:1", None),
        (b"re:2", None),
    ]
    assert replies.in_flight == 0
    await replies.close()


async def test_the_awaited_request_shares_the_direct_inbox(nc: NATS) -> None:
    subject = "test.replies.awaited"

    async def answer(msg: Msg) -> None:
        await nc.publish(msg.reply, b"ok")

    await nc.subscribe(subject, cb=answer)
    replies = Replies(nc)
    msg = await replies.request(subject, b"", timeout=5)
    assert msg.data == b"ok"
    assert replies.direct
    assert replies.in_flight == 0


async def test_a_started_request_gets_its_validated_result(worker: RunningWorker, bus: Bus) -> None:
    """The first call subscribes the inbox (in a task); the next ones need none."""
    for seq in (1, 2):
        outcome = Outcome()
        bus.start(ops.echo, {"key": "s", "seq": seq}, outcome, caller=None)
        reply, error = await outcome.one()
        assert error is None
        assert isinstance(reply, Reply)
        assert reply.value == EchoResult(key="s", seq=seq, payload={})
    assert not bus._tasks


async def test_a_reply_that_breaks_the_result_schema_is_a_bad_gateway(
    worker: RunningWorker, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        outcome = Outcome()
        bus.start(ops.bad_reply, {}, outcome, caller=None, request_id="rid-start-bad-1")
        reply, error = await outcome.one()
    assert reply is None
    assert isinstance(error, BadGateway)
    assert error.details == {"request_id": "rid-start-bad-1"}
    [logged] = [r for r in caplog.records if r.getMessage() == "worker reply failed validation"]
    assert getattr(logged, "_request_id", None) == "rid-start-bad-1"


async def test_no_reply_before_the_deadline_is_a_timeout(worker: RunningWorker, bus: Bus) -> None:
    outcome = Outcome()
    bus.start(ops.slow, {"delay": 2}, outcome, caller=None)
    reply, error = await outcome.one()
    assert reply is None
    assert isinstance(error, Timeout)


async def test_no_worker_listening_is_unavailable_shortly_before_the_deadline(
    nc: NATS, bus: Bus
) -> None:
    await bus.replies.open()
    outcome = Outcome()
    bus.start(ops.echo, {}, outcome, caller=None, timeout=1)
    reply, error = await outcome.one()
    assert reply is None
    assert isinstance(error, Unavailable)
    assert str(error.message) == "no worker is serving test.echo"


async def test_a_busy_refusal_is_asked_again(worker: RunningWorker, bus: Bus) -> None:
    worker.service.actors.mailbox_size = 1
    await bus.replies.open()
    outcomes = [Outcome() for _ in range(3)]
    for i, outcome in enumerate(outcomes):
        bus.start(ops.echo, {"key": "busy", "seq": i, "delay": 0.1}, outcome, caller=None)
    results = [await outcome.one() for outcome in outcomes]
    assert sorted(reply.value.seq for reply, _ in results) == [0, 1, 2]


async def test_an_unreachable_bus_raises_at_once(settings: Any, bus: Bus) -> None:
    from hubbub.natsconn import connect_nats

    conn = await connect_nats(settings.nats_url, "hubbub-test-closed-start")
    closed = Bus(conn, bus.subjects)
    await conn.close()
    outcome = Outcome()
    with pytest.raises(Unavailable, match="message bus is unreachable"):
        closed.start(ops.echo, {}, outcome, caller=None, timeout=5)
    assert outcome.calls == []
