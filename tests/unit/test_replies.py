"""The request/reply client's bookkeeping: each reply to its request, deadlines that fire
late by at most a tick and never early, nothing left behind by any way a request ends.

A fake connection stands in for NATS (the real one is in tests/integration/test_bus.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from hubbub.replies import TICK, TIMER_SLACK_S, Replies


class FakeNats:
    def __init__(self) -> None:
        self.subscriptions: list[str] = []
        self.published: list[tuple[str, bytes, str]] = []
        self.cb: Any = None
        self.fail_publish = False

    def new_inbox(self) -> str:
        return "_INBOX.abc"

    async def subscribe(self, subject: str, cb: Any) -> object:
        await asyncio.sleep(0)  # a round trip to the server: let others run meanwhile
        self.subscriptions.append(subject)
        self.cb = cb
        return object()

    async def publish(
        self, subject: str, payload: bytes, reply: str = "", headers: Any = None
    ) -> None:
        if self.fail_publish:
            raise ConnectionError("gone")
        self.published.append((subject, payload, reply))

    async def deliver(self, subject: str, data: bytes, headers: Any = None) -> None:
        await self.cb(Msg(_client=cast(Any, self), subject=subject, data=data, headers=headers))


@pytest.fixture
def nc() -> FakeNats:
    return FakeNats()


@pytest.fixture
def replies(nc: FakeNats) -> Replies:
    return Replies(cast(Any, nc))


async def waiting(replies: Replies, timeout: float = 5) -> asyncio.Task[Msg]:
    """A request sent and waiting for its reply."""
    request = asyncio.create_task(replies.request("svc.op", b"", timeout=timeout))
    await asyncio.sleep(0.01)
    return request


async def test_each_reply_reaches_its_own_request(nc: FakeNats, replies: Replies) -> None:
    requests = [
        asyncio.create_task(replies.request("svc.op", b"%d" % i, timeout=5)) for i in range(3)
    ]
    await asyncio.sleep(0.01)
    assert nc.subscriptions == ["_INBOX.abc.*"]  # one subscription for every request
    # Answer in reverse order, plus a stray reply nobody waits for.
    await nc.deliver("_INBOX.abc.nobody", b"stray")
    for subject, payload, reply in reversed(nc.published):
        assert subject == "svc.op"
        await nc.deliver(reply, b"answer to " + payload)
    answers = [msg.data for msg in await asyncio.gather(*requests)]
    assert answers == [b"answer to 0", b"answer to 1", b"answer to 2"]
    assert replies.in_flight == 0
    assert len({reply for _, _, reply in nc.published}) == 3


async def test_a_late_reply_is_a_timeout_no_earlier_than_the_deadline(
    nc: FakeNats, replies: Replies
) -> None:
    start = time.monotonic()
    with pytest.raises(NatsTimeout):
        await replies.request("svc.op", b"", timeout=0.05)
    waited = time.monotonic() - start
    assert waited >= 0.05  # never early; late by up to a TICK, and by what a busy host adds
    assert waited < 0.05 + TICK + TIMER_SLACK_S + 1.0  # (a bound that only catches a missed timer)
    assert replies.in_flight == 0
    await nc.deliver(nc.published[0][2], b"too late")  # ignored, no error


async def test_requests_with_different_deadlines_each_time_out_at_their_own(
    nc: FakeNats, replies: Replies
) -> None:
    short = asyncio.create_task(replies.request("svc.op", b"", timeout=0.03))
    long = asyncio.create_task(replies.request("svc.op", b"", timeout=5))
    with pytest.raises(NatsTimeout):
        await short
    assert not long.done()
    await nc.deliver(nc.published[1][2], b"ok")
    assert (await long).data == b"ok"
    assert replies.in_flight == 0


async def test_no_responders_is_its_own_error(nc: FakeNats, replies: Replies) -> None:
    request = await waiting(replies)
    await nc.deliver(nc.published[0][2], b"", headers={"Status": "503"})
    with pytest.raises(NoRespondersError):
        await request
    assert replies.in_flight == 0


async def test_a_copy_sent_again_has_a_reply_subject_of_its_own_and_the_first_reply_wins(
    nc: FakeNats, replies: Replies
) -> None:
    """A worker may answer a reply subject only once, so the copy ``resend`` publishes
    answers to a subject of its own; whichever reply comes first answers the request."""
    a = asyncio.create_task(replies.request("svc.op", b"a", timeout=5, resendable=True))
    b = asyncio.create_task(replies.request("svc.op", b"b", timeout=5, resendable=True))
    await asyncio.sleep(0.01)
    assert replies.resend() == 2
    await asyncio.sleep(0.01)  # the copies are published by tasks (not the plain case)
    subjects = {
        p: [reply for _, payload, reply in nc.published if payload == p] for p in (b"a", b"b")
    }
    assert [len(set(s)) for s in subjects.values()] == [2, 2]  # the request's, the copy's
    await nc.deliver(subjects[b"a"][1], b"the copy's answer")
    await nc.deliver(subjects[b"a"][0], b"late")
    await nc.deliver(subjects[b"b"][0], b"the answer")
    await nc.deliver(subjects[b"b"][1], b"late")
    assert ((await a).data, (await b).data) == (b"the copy's answer", b"the answer")
    assert replies.in_flight == 0
    assert replies.resend() == 0


async def test_a_cancelled_or_failed_request_leaves_nothing_waiting(
    nc: FakeNats, replies: Replies
) -> None:
    request = await waiting(replies)
    assert replies.in_flight == 1
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert replies.in_flight == 0

    nc.fail_publish = True
    with pytest.raises(ConnectionError):
        await replies.request("svc.op", b"", timeout=5)
    assert replies.in_flight == 0


class Called:
    def __init__(self) -> None:
        self.calls: list[tuple[Msg | None, BaseException | None]] = []
        self.done = asyncio.Event()

    def __call__(self, msg: Msg | None, error: BaseException | None) -> None:
        self.calls.append((msg, error))
        self.done.set()


async def test_a_started_request_is_called_back_once_with_its_outcome(
    nc: FakeNats, replies: Replies
) -> None:
    """Through ``Client.publish`` (the fake has no buffer to write to), in a task: the
    reply, a failed publish and a deadline each reach the callback once."""
    await replies.open()
    answered, failed, late = Called(), Called(), Called()
    replies.start("svc.op", b"a", answered, timeout=5)
    assert answered.calls == []  # never from within start
    await asyncio.sleep(0)
    await nc.deliver(nc.published[0][2], b"ok")
    assert [(m.data if m else None, e) for m, e in answered.calls] == [(b"ok", None)]

    nc.fail_publish = True
    replies.start("svc.op", b"b", failed, timeout=5)
    await asyncio.wait_for(failed.done.wait(), 5)
    [(msg, error)] = failed.calls
    assert msg is None
    assert isinstance(error, ConnectionError)

    nc.fail_publish = False
    replies.start("svc.op", b"c", late, timeout=0.02)
    await asyncio.wait_for(late.done.wait(), 5)
    [(msg, error)] = late.calls
    assert msg is None
    assert isinstance(error, NatsTimeout)
    await nc.deliver(nc.published[-1][2], b"too late")
    assert len(late.calls) == 1
    assert replies.in_flight == 0
