"""Request/reply over one wildcard inbox: what ``nc.request`` does, with less work a request.

nats-py's ``request`` also muxes replies on one ``_INBOX.<nuid>.*`` subscription, but
makes a fresh NUID and a random token (a system call) for every request, checks its
subjects with regular expressions, and waits under ``asyncio.wait_for`` (a second future
and a timer per request). The hub makes a request for every REST call and WebSocket RPC.

Here a token is a counter in hex (unique within the inbox, whose name is random), the
reply subject is checked once by ``publish``, and deadlines share timers: requests whose
deadlines fall in the same ``TICK`` are expired by one timer. A request therefore times
out up to ``TICK`` (and ``TIMER_SLACK_S``) late, never early.

A request is either awaited (``request``) or answered through a callback (``start``),
which needs no task: it is published at once and its callback runs when the reply
arrives, or at its deadline. Replies reach their requests straight from nats-py's
message processing: the inbox subscription's queue is swapped for one that dispatches
each message as it is put, so there is no queue, no subscription task and no coroutine
per reply (``hubbub/nats_direct.py``). Requests are published the same way round: the PUB command
goes straight into the client's pending buffer and its flusher is woken, as
``Client.publish`` does without its coroutines and checks (``_publish_now``). Both reach
into nats-py's ``Client`` (``hubbub/nats_direct.py``, checked by
tests/integration/test_bus_start.py against the real client); should a release change
what they use, the subscription's own callback still delivers every reply (through its
task), and ``Client.publish`` publishes.

A request started ``resendable`` keeps what publishing it again needs until it is
answered or expires: ``resend`` publishes every such request once more when a worker
that may have held it is gone (``hub/worker_watch.py``). The copy has a reply subject of
its own, a token that stands for the request's: NATS lets a responder with
``allow_responses`` answer a reply subject once, and one that was handed the same reply
subject twice before answering may answer neither (nats-server 2.15), so a copy that
reached the live worker still doing the request would silence both answers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from hubbub.nats_direct import dispatch_directly, publish_now, publishes_directly

log = logging.getLogger(__name__)

TICK = 0.01  # seconds: the resolution of request deadlines
TIMER_SLACK_S = 0.002  # a slot's timer is set this much after it ends (see ``_wait``)

# The status header NATS sets on the message it sends in place of a reply when nobody is
# subscribed to the request's subject (a "no responders" message: no payload).
_STATUS = "Status"
_NO_RESPONDERS = "503"

# What ``start`` calls back with: the reply, or the error ``request`` would raise
# (``NoRespondersError``, ``TimeoutError``, or why the publish failed).
OnReply = Callable[[Msg | None, BaseException | None], None]
_Waiter = asyncio.Future[Msg] | OnReply


class Replies:
    """The request/reply client of one NATS connection."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._prefix = ""  # "_INBOX.<nuid>." once subscribed
        self._sub: Subscription | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the connection's, once open
        self._opening: asyncio.Lock | None = None
        self._tokens = itertools.count(1)
        # Requests by deadline slot (an integer number of TICKs of the monotonic clock), and
        # each waiting token's slot: what is kept is what is in flight, nothing more.
        self._expiring: dict[int, dict[str, _Waiter]] = {}
        self._waiting: dict[str, dict[str, _Waiter]] = {}
        self._publishing: set[asyncio.Task[None]] = set()  # publishes left to a task
        # What sending a request again needs, by token, for requests that may be sent
        # again (``resend``): (subject, payload, headers).
        self._resendable: dict[str, tuple[str, bytes, dict[str, str] | None]] = {}
        # The token of each copy ``resend`` published → the token of its request.
        self._copies: dict[str, str] = {}
        self.direct = False  # replies are dispatched from nats-py's message processing
        self._prefix_bytes = b""
        self._direct_publish = False  # requests go into nats-py's buffer (_publish_now)

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    @property
    def ready(self) -> bool:
        """Whether ``start`` may be called (the inbox is subscribed)."""
        return self._sub is not None

    async def open(self) -> None:
        """Subscribe the inbox, once (``request`` does it on first use)."""
        if self._sub is None:
            await self._open()

    async def request(
        self,
        subject: str,
        payload: bytes,
        *,
        timeout: float,
        headers: dict[str, str] | None = None,
        resendable: bool = False,
    ) -> Msg:
        """Publish ``payload`` to ``subject`` and return the reply.

        Raises nats-py's own errors, as ``nc.request`` does: ``NoRespondersError`` when
        nobody listens on ``subject``, ``TimeoutError`` when no reply came in time.
        A ``resendable`` request is published again by ``resend``.
        """
        loop = self._loop
        if loop is None or self._sub is None:
            await self._open()
            loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        token = self._wait(loop, timeout, future)
        if resendable:
            self._resendable[token] = (subject, payload, headers)
        try:
            if headers is not None or not self._publish_now(loop, subject, token, payload):
                await self.nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
            msg = await future
        except BaseException:
            self._forget(token)
            raise
        if msg.headers and not msg.data and msg.headers.get(_STATUS) == _NO_RESPONDERS:
            raise NoRespondersError
        return msg

    def start(
        self,
        subject: str,
        payload: bytes,
        on_reply: OnReply,
        *,
        timeout: float,
        headers: dict[str, str] | None = None,
        resendable: bool = False,
    ) -> None:
        """Publish ``payload`` to ``subject`` now; ``on_reply`` gets the reply, or the
        error ``request`` would raise (or why the publish failed), exactly once and never
        from within this call: from the reply's processing, the deadline's timer, or the
        task a publish that is not the plain case gets (``_publish_now``). Only once
        ``ready``. A ``resendable`` request is published again by ``resend``."""
        loop = self._loop
        if loop is None or self._sub is None:
            raise RuntimeError("Replies.open() first")
        token = self._wait(loop, timeout, on_reply)
        if resendable:
            self._resendable[token] = (subject, payload, headers)
        if headers is None and self._publish_now(loop, subject, token, payload):
            return
        task = loop.create_task(self._publish(subject, payload, token, headers))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish(
        self, subject: str, payload: bytes, token: str, headers: dict[str, str] | None
    ) -> None:
        """``Client.publish`` for a started request; its failure goes to the request."""
        try:
            await self.nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        except Exception as exc:
            waiter = self._forget(token)
            if waiter is not None and not isinstance(waiter, asyncio.Future):
                self._call(waiter, None, exc)

    def _publish_now(
        self, loop: asyncio.AbstractEventLoop, subject: str, token: str, payload: bytes
    ) -> bool:
        """``nats_direct.publish_now`` of a request (reply to its token); False when it
        is not the plain case, and ``Client.publish`` then decides."""
        return self._direct_publish and publish_now(
            self.nc, loop, subject.encode(), self._prefix_bytes + token.encode(), payload
        )

    def _wait(self, loop: asyncio.AbstractEventLoop, timeout: float, waiter: _Waiter) -> str:
        """A new token for ``waiter``, which the deadline's slot will expire."""
        token = "%x" % next(self._tokens)  # noqa: UP031  # the cheapest way to hex
        # The slot from the monotonic clock itself, and its timer a little past the slot's
        # end: uvloop's clock (the same monotonic one) is read once per loop turn and its
        # timers count whole milliseconds, either of which could expire a request early.
        slot = math.ceil((time.monotonic() + timeout) / TICK)
        expiring = self._expiring.get(slot)
        if expiring is None:
            expiring = self._expiring[slot] = {}
            loop.call_at(slot * TICK + TIMER_SLACK_S, self._expire, slot)
        expiring[token] = waiter
        self._waiting[token] = expiring
        return token

    async def _open(self) -> None:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._sub is not None:
                return
            prefix = self.nc.new_inbox() + "."
            sub = await self.nc.subscribe(prefix + "*", cb=self._on_reply)
            self.direct = dispatch_directly(sub, self._deliver)
            self._direct_publish = publishes_directly(self.nc)
            self._sub = sub
            self._prefix = prefix
            self._prefix_bytes = prefix.encode()
            self._loop = asyncio.get_running_loop()

    async def _on_reply(self, msg: Msg) -> None:
        self._deliver(msg)

    def _deliver(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) :]
        waiter = self._forget(token)
        if waiter is None:
            if not self._copies:
                return  # late (expired) or stray
            original = self._copies.pop(token, None)  # the reply to a copy?
            waiter = None if original is None else self._forget(original)
            if waiter is None:
                return  # late: answered, or expired
        if isinstance(waiter, asyncio.Future):
            if not waiter.done():
                waiter.set_result(msg)
        elif msg.headers and not msg.data and msg.headers.get(_STATUS) == _NO_RESPONDERS:
            self._call(waiter, None, NoRespondersError())
        else:
            try:  # ``_call``, inline: the path of every reply
                waiter(msg, None)
            except Exception:
                log.exception("a reply's callback failed")

    @staticmethod
    def _call(on_reply: OnReply, msg: Msg | None, error: BaseException | None) -> None:
        # A callback's failure is its own: it must not reach nats-py's reader (or a timer).
        try:
            on_reply(msg, error)
        except Exception:
            log.exception("a reply's callback failed")

    def _forget(self, token: str) -> _Waiter | None:
        expiring = self._waiting.pop(token, None)
        if expiring is None:
            return None
        if self._resendable:
            self._resendable.pop(token, None)
        return expiring.pop(token, None)

    def _expire(self, slot: int) -> None:
        for token, waiter in self._expiring.pop(slot, {}).items():
            del self._waiting[token]
            self._resendable.pop(token, None)
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():
                    waiter.set_exception(NatsTimeout())
            else:
                self._call(waiter, None, NatsTimeout())

    def resend(self) -> int:
        """Publish every resendable request still waiting once more, each copy with a
        token of its own that answers the same request: the first reply answers it, a
        later one is dropped as late. For when a worker that may have held some of them
        is gone. Returns how many were sent."""
        loop = self._loop
        if loop is None:
            return 0
        # Copies of requests no longer waiting whose replies never came: forgotten here,
        # so that what is kept is bounded by what was in flight at the last resend.
        waiting = self._waiting
        self._copies = {c: t for c, t in self._copies.items() if t in waiting}
        for token, (subject, payload, headers) in list(self._resendable.items()):
            copy = "%x" % next(self._tokens)  # noqa: UP031  # as ``_wait`` makes tokens
            self._copies[copy] = token
            if headers is None and self._publish_now(loop, subject, copy, payload):
                continue
            task = loop.create_task(self._publish_again(subject, payload, copy, headers))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        return len(self._resendable)

    async def _publish_again(
        self, subject: str, payload: bytes, token: str, headers: dict[str, str] | None
    ) -> None:
        """``Client.publish`` of a request sent again: if it fails, the request still
        waits for the first one's reply, or its deadline."""
        try:
            await self.nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        except Exception:
            log.debug("sending a request again failed", exc_info=True)

    async def close(self) -> None:
        """Stop listening for replies; requests still waiting time out."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()
