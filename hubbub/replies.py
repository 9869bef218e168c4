"""Request/reply over one wildcard inbox: what ``nc.request`` does, with less work a request.

nats-py's ``request`` also muxes replies on one ``_INBOX.<nuid>.*`` subscription, but
makes a fresh NUID and a random token (a system call) for every request, checks its
subjects with regular expressions, and waits under ``asyncio.wait_for`` (a second future
and a timer per request). The hub makes a request for every REST call and WebSocket RPC.

Here a token is a counter in hex (unique within the inbox, whose name is random), the
reply subject is checked once by ``publish``, and deadlines share timers: requests whose
deadlines fall in the same ``TICK`` are expired by one timer. A request therefore times
out up to ``TICK`` late, never early.
"""

from __future__ import annotations

import asyncio
import itertools
import math

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

TICK = 0.01  # seconds: the resolution of request deadlines

# The status header NATS sets on the message it sends in place of a reply when nobody is
# subscribed to the request's subject (a "no responders" message: no payload).
_STATUS = "Status"
_NO_RESPONDERS = "503"


class Replies:
    """The request/reply client of one NATS connection."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._prefix = ""  # "_INBOX.<nuid>." once subscribed
        self._sub: Subscription | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the connection's, once open
        self._opening: asyncio.Lock | None = None
        self._tokens = itertools.count(1)
        # Requests by deadline slot (an integer number of TICKs of the loop's clock), and
        # each waiting token's slot: what is kept is what is in flight, nothing more.
        self._expiring: dict[int, dict[str, asyncio.Future[Msg]]] = {}
        self._waiting: dict[str, dict[str, asyncio.Future[Msg]]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    async def request(
        self,
        subject: str,
        payload: bytes,
        *,
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> Msg:
        """Publish ``payload`` to ``subject`` and return the reply.

        Raises nats-py's own errors, as ``nc.request`` does: ``NoRespondersError`` when
        nobody listens on ``subject``, ``TimeoutError`` when no reply came in time.
        """
        loop = self._loop
        if loop is None or self._sub is None:
            await self._open()
            loop = asyncio.get_running_loop()
        token = "%x" % next(self._tokens)  # noqa: UP031  # the cheapest way to hex
        future: asyncio.Future[Msg] = loop.create_future()
        slot = math.ceil((loop.time() + timeout) / TICK)
        expiring = self._expiring.get(slot)
        if expiring is None:
            expiring = self._expiring[slot] = {}
            loop.call_at(slot * TICK, self._expire, slot)
        expiring[token] = future
        self._waiting[token] = expiring
        try:
            await self.nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
            msg = await future
        except BaseException:
            self._forget(token)
            raise
        if msg.headers and not msg.data and msg.headers.get(_STATUS) == _NO_RESPONDERS:
            raise NoRespondersError
        return msg

    async def _open(self) -> None:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._sub is not None:
                return
            prefix = self.nc.new_inbox() + "."
            self._sub = await self.nc.subscribe(prefix + "*", cb=self._on_reply)
            self._prefix = prefix
            self._loop = asyncio.get_running_loop()

    async def _on_reply(self, msg: Msg) -> None:
        future = self._forget(msg.subject[len(self._prefix) :])
        if future is not None and not future.done():
            future.set_result(msg)

    def _forget(self, token: str) -> asyncio.Future[Msg] | None:
        expiring = self._waiting.pop(token, None)
        return None if expiring is None else expiring.pop(token, None)

    def _expire(self, slot: int) -> None:
        for token, future in self._expiring.pop(slot, {}).items():
            del self._waiting[token]
            if not future.done():
                future.set_exception(NatsTimeout())

    async def close(self) -> None:
        """Stop listening for replies; requests still waiting time out."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()
