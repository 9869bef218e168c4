"""The outbox relay: moves committed events from PostgreSQL onto JetStream.

One relay runs in every worker process, and one of them at a time publishes — the
*leader*, the one holding a session-level advisory lock on a connection of its own (not
the pool's) — so the outbox is published in id order. Each event goes out with its event
id as ``Nats-Msg-Id``: if a relay dies after publishing but before marking the rows, the
next one re-sends them and JetStream stores each once (within its duplicate window). A
pass that fails after JetStream acknowledged some of its rows (a later row failed, or the
mark did) marks those rows then, or at the relay's next pass, instead of sending them
again once JetStream or PostgreSQL is back — maybe past the window.

A relay is woken at once by its own worker after a commit that wrote events (``kick``)
and polls otherwise, which picks up rows left behind by a worker that died. Woken, the
leader reads the oldest unpublished rows, publishes them and marks them: two autocommit
statements a pass, no transaction (the lock is held between passes). Any other relay
tries to take the lock and, in the same statement, sends the leader a ``NOTIFY``: the
rows its worker committed before are read by the leader's next pass. The lock passes on
when the leader's connection ends: its worker stopped (after a last pass) or died
(PostgreSQL releases the lock with the session), or a pass of the leader failed — it
closes its connection then, so a relay that can still publish takes over. Passes start
at least ``min_interval`` apart: an event after a quiet spell goes out at once, and under
a stream of commits each pass takes the rows of many.

The lead is a lease (see ``_lease_settings``): a leader silent for ``LEASE_MIN_S`` may
have lost it, and another relay published its rows. So a batch is *fenced*: published
only within half that time after its read was sent, and only while the relay's NATS
client is connected (nats-py keeps what it is given while it reconnects, and sends it
whenever it is back). A leader frozen between reading and publishing (a stopped process,
a blocked loop) gives its batch up when it thaws, rather than sending it late — past
JetStream's duplicate window, after newer events. So does one frozen in the middle of
publishing (the fence is checked before each row and once more before the batch's
acknowledgements are awaited, which is when nats-py's flusher writes it): the messages
it had handed to nats-py and nats-py has not written are taken back out of its buffer
(``AckedPublisher.withdraw``), as they are after any failed pass. Only a freeze in the
instant between that last check and the flusher's write can let a batch out late.

What nats-py has written is out of reach: its flusher hands its whole buffer to the
socket's transport, then awaits the transport's drain. On a connection that stalls
(before nats-py's pings find it stale) with nothing queued, a pass's messages are written
at once, wait in the transport and go out should the connection move again; only what is
queued while the flusher waits in that drain, behind a backlog the stalled socket does
not take, stays in nats-py's buffer to be taken back.

A row that can never be published — a channel name that is not one, a payload over
``max_payload`` (of the NATS server the client is connected to now) or one orjson cannot
read, a message JetStream refuses (400: over the stream's ``max_msg_size``, a header over
64 KiB) — would otherwise stop every event behind it for good. It is set aside instead:
marked ``failed_at`` with the reason in ``last_error``, logged as an error, kept until the
janitor prunes it, and the rows after it go out. Anything else (no connection, a
timeout, no stream, JetStream's storage used up: 503) fails the whole batch, which is
tried again with backoff. JetStream's answers are read by ``AckedPublisher``: nats-py's
``publish_async`` loses its errors, and a refused message would look like a timeout.

After a failed pass the relay waits out its backoff, however many commits kick it
meanwhile. While PostgreSQL or JetStream is unreachable (or JetStream answers 503) it
backs off quietly: the worker's ``Health`` logs a database outage once, and a JetStream
outage is one "paused" line and one "resumed" line, once events go out again (this
relay's publishes are acknowledged, or the first row it could not publish has gone out
through the relay that leads now) — not a line per pass; messages taken back are one
line too, at the first pass of a run of failures that takes any back. Any other failure
is a traceback per backoff step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import asyncpg
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, ConnectionReconnectingError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import Header, PubAck, StatusCode
from nats.js.errors import (
    APIError,
    BadRequestError,
    NoStreamResponseError,
    ServiceUnavailableError,
    TooManyStalledMsgsError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.db import asyncpg_connect_args
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import HubbubError
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import NATS, POSTGRES, Health, Outage
from hubbub.nats_direct import publishes_directly
from hubbub.natsconn import message_size
from hubbub.tasks import cancel_and_wait
from workers.outages import classify, record

log = logging.getLogger(__name__)

RELAY_LOCK_ID = 0x48554242  # "HUBB": one relay at a time across all worker processes
NOTIFY_CHANNEL = "hubbub_outbox"  # "rows are waiting": the other relays to the leader
CONNECT_TIMEOUT_S = 10.0
FINAL_RETRY_S = 0.05  # a stopping relay that does not lead: how often it looks again
COMMAND_TIMEOUT_S = 15.0  # any statement of the relay's, on the client's side
LEASE_MIN_S = 10.0  # a leader silent for this long (and LEASE_POLLS polls) loses the lead
LEASE_POLLS = 5
# A batch is published only this much of LEASE_MIN_S after its read was sent: the server
# cannot have ended the session (and let another relay publish the rows) before then.
# The rest of the lease is left for the messages already on their way.
FENCE_SHARE = 0.5
JETSTREAM_AWAY = (
    TimeoutError,
    NatsTimeout,
    NoRespondersError,
    NoStreamResponseError,
    ServiceUnavailableError,  # JetStream's 503: say, its storage is used up
    TooManyStalledMsgsError,
)
MAX_DELAY_S = 30.0  # between tries after failures that are not outages
MAX_OUTAGE_DELAY_S = 5.0  # while a dependency is away: back soon after it is


# asyncpg's errors of its own state (not the server's): on a connection that closed under
# a statement, they are the server going away.
_ASYNCPG_OWN = (asyncpg.InterfaceError, asyncpg.InternalClientError)


class ConnectionLost(Exception):
    """The relay's own PostgreSQL connection closed during a pass."""


class LeadLost(Exception):
    """The lease ran out between reading a batch and publishing it (the relay was frozen,
    its loop blocked): another relay may have published the rows since, so the batch was
    given up."""


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        js: JetStreamContext,
        subjects: Subjects,
        *,
        poll_interval: float = 1.0,
        batch_size: int = 256,
        publish_timeout: float = 5.0,
        max_payload: int | None = None,
        health: Health | None = None,
        min_interval: float = 0.02,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        nats: NatsClient | None = None,
    ) -> None:
        """``nats``: the client under ``js``, whose connection fences each batch (None:
        not looked at). With it, a ``JetStreamContext``'s publishes go through an
        ``AckedPublisher`` on that client instead (nats-py's lose JetStream's errors)."""
        self.sessions = sessions
        self.js: JetStreamContext | AckedPublisher = js
        if nats is not None and isinstance(js, JetStreamContext):
            self.js = AckedPublisher(nats)
        self.subjects = subjects
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        # The batch read now: halved after each batch given up for the lease (one too big
        # to publish within the fence would be given up for ever), whole after a pass.
        self.batch_now = batch_size
        self.publish_timeout = publish_timeout
        # The NATS server's limit, when known; with ``nats``, that client's at each row (a
        # server it reconnected to may allow less than the first one did).
        self.max_payload = max_payload
        self.min_interval = min_interval  # seconds between the starts of two passes
        self.health = health if health is not None else Health()
        self.paused: str | None = None  # why, while JetStream is unreachable
        self._stuck_at: int | None = None  # while paused: the first row it could not publish
        # The first row of the batch published last that JetStream did not acknowledge
        # (None: it acknowledged them all). Rows before it were stored, and are marked.
        self._first_owed: int | None = None
        self._took_back_said = False  # the failures under way have logged a take-back
        self._sleep = sleep  # how a backoff is waited out
        self._read_at: float | None = None  # loop time the read of the current batch began
        self._nats = nats
        self.published = 0  # rows marked published by this relay
        self.set_aside = 0
        self._acknowledged = 0  # messages JetStream acknowledged to this relay
        # Rows JetStream stored (acknowledged) whose mark has not committed: a pass that
        # failed after their acknowledgement. Marked by the next pass, leading or not, not
        # sent again: re-sent only once PostgreSQL or JetStream is back, maybe past the
        # duplicate window, they would be stored twice.
        self._stored: list[int] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._conn: asyncpg.Connection | None = None  # the relay's own; None: not open
        self.leading = False  # this relay holds the lock on ``_conn``
        self._using = asyncio.Lock()  # one pass at a time on ``_conn``

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, final_flush_timeout: float = 5.0) -> None:
        """Stop the loop, then publish what the last requests committed.

        The loop also checks a flag: on Python 3.11 a cancellation can be lost (its
        ``asyncio.wait_for`` returns a result that arrives together with the cancel,
        CPython gh-86296), and the loop would then run on forever, with ``stop`` waiting.
        """
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        await cancel_and_wait(task)
        try:
            async with asyncio.timeout(final_flush_timeout):
                await self._final_flush()
        except Exception:
            log.warning("final outbox flush failed; the next relay will publish the rest")
        finally:
            await self._close()  # the lock passes on to another relay

    async def _final_flush(self) -> None:
        """Publish what was committed before the stop: as the leader, or by telling the
        leader and waiting until those rows are out — taking the lead when it frees up
        (the leader may be stopping too, its loop already gone)."""
        if not await self.flush():
            return
        conn = self._conn
        if conn is None:
            return
        last = await conn.fetchval(_LAST_ID)
        while last is not None and await conn.fetchval(_WAITING_UP_TO, last):
            await asyncio.sleep(FINAL_RETRY_S)
            if not await self.flush():
                return
            conn = self._conn
            if conn is None:
                return

    async def _run(self) -> None:
        failures = 0
        cap = MAX_DELAY_S
        loop = asyncio.get_running_loop()
        last_pass = -self.min_interval
        while not self._stopping:
            if failures:
                # Kicks do not cut a backoff short: under a stream of commits each pass
                # would be a retry, on a new connection and with a line in the log.
                await self._sleep(self._delay(failures, cap))
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()
            # Kicks that come meanwhile are taken by this pass: the rows of their commits.
            if (wait := last_pass + self.min_interval - loop.time()) > 0:
                await asyncio.sleep(wait)
            last_pass = loop.time()
            self._wake.clear()
            try:
                done = self._acknowledged + self.set_aside
                await self.flush()  # not leading: the leader was told, and takes the rows
                failures = 0
                self.batch_now = self.batch_size
                if self.paused is not None and (
                    self._acknowledged + self.set_aside > done
                    or (self._nats_connected() and await self._went_out(self._stuck_at))
                ):
                    self.paused = self._stuck_at = None
                    log.info("outbox relay resumed: events go out again")
                if self.paused is None:
                    self._took_back_said = False
            except asyncio.CancelledError:
                raise
            except LeadLost as exc:
                # Backed off like a failure, and the next batch smaller: one that keeps
                # taking longer than the fence allows would be read and given up again.
                failures += 1
                self.batch_now = max(1, self.batch_now // 2)
                log.warning(
                    "outbox relay gave up a batch: %s; the next has at most %d rows",
                    exc,
                    self.batch_now,
                )
            except Exception as exc:
                failures += 1
                outage = self._outage(exc)
                if outage is None:
                    cap = MAX_DELAY_S
                    log.exception("outbox relay failed; retrying", extra={"failures": failures})
                    continue
                cap = MAX_OUTAGE_DELAY_S
                if outage.dependency != NATS:
                    record(self.health, outage, exc)
                elif self.paused is None:
                    self.paused = f"{type(exc).__name__}: {exc}"[:300]
                    self._stuck_at = self._first_owed
                    log.warning(
                        "outbox relay paused: JetStream is unreachable (%s); retrying",
                        self.paused,
                    )

    async def _went_out(self, row_id: int | None) -> bool:
        """Whether the rows up to ``row_id`` are no longer waiting: published (or set
        aside) by whichever relay leads now. A pass that only told the leader shows
        nothing of JetStream; this shows that events go out again."""
        if row_id is None:
            return True
        async with self._using:
            conn = self._conn
            if conn is None:
                return False
            try:
                return not await conn.fetchval(_WAITING_UP_TO, row_id)
            except BaseException:
                self._drop()
                raise

    @staticmethod
    def _outage(exc: Exception) -> Outage | None:
        """Which dependency ``exc`` shows to be away. JetStream's own signs count too: no
        acknowledgement in time, no stream listening (a server still recovering its
        streams after a restart answers a publish with status 503), or too many
        publishes waiting for their acknowledgements."""
        outage = classify(exc)
        if outage is None and isinstance(exc, ConnectionLost):
            outage = Outage(POSTGRES)
        if outage is None and isinstance(exc, JETSTREAM_AWAY):
            outage = Outage(NATS)
        return outage

    def _delay(self, failures: int, cap: float = MAX_DELAY_S) -> float:
        """The backoff after ``failures`` (at least one) failed passes in a row."""
        return min(self.poll_interval * 2.0**failures, cap)

    async def flush(self) -> bool:
        """Publish every unpublished row if this relay leads or can take the lead now.
        Returns True if another relay leads (it was told that rows are waiting).

        A pass that fails closes the connection, and with it the lead: the next one
        starts from a new connection, and another relay may have taken over meanwhile.
        """
        async with self._using:
            try:
                return await self._flush()
            except BaseException as exc:
                lost = self._conn is not None and self._conn.is_closed()
                self._drop()
                failed = isinstance(exc, Exception) and not isinstance(exc, LeadLost)
                if lost and failed and self._past_fence():
                    # The server ended the session of a leader silent for its lease: not
                    # an outage of PostgreSQL.
                    raise LeadLost(self._silence()) from exc
                if lost and isinstance(exc, _ASYNCPG_OWN) and classify(exc) is None:
                    # asyncpg can report a connection the server closed under a statement
                    # as an error of its own state machine ("another operation is in
                    # progress"): it is the database going away, not a relay bug.
                    raise ConnectionLost("the relay's PostgreSQL connection closed") from exc
                raise

    async def _flush(self) -> bool:
        self._read_at = None
        conn = await self._lead()
        if conn is None:
            return True
        while True:
            self._read_at = asyncio.get_running_loop().time()
            rows = await self._take(conn)
            if not rows:
                return False
            try:
                refused = await self._publish(rows, lambda: self._fence(conn))
            except Exception:
                # What JetStream stored before the failure is marked now, if PostgreSQL
                # still answers (else by the next pass).
                if not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await self._mark_stored(conn)
                raise
            # Each row's mark commits by itself: a row published and not marked (the
            # worker died in between) is published again, and JetStream keeps one copy
            # if that is within its duplicate window.
            await self._mark_stored(conn)
            for row_id, reason in refused.items():
                await conn.execute(_SET_ASIDE, row_id, reason[:500])
            self.set_aside += len(refused)
            if len(rows) < self.batch_now:
                return False

    async def _mark_stored(self, conn: asyncpg.Connection) -> None:
        """Mark the rows JetStream acknowledged as published."""
        if self._stored:
            await conn.execute(_MARK_PUBLISHED, self._stored)
            self.published += len(self._stored)
            self._stored = []

    async def _take(self, conn: asyncpg.Connection) -> list[Pending]:
        """The oldest unpublished rows, a batch of them."""
        return [Pending(*r) for r in await conn.fetch(_TAKE, self.batch_now)]

    def _fence(self, conn: asyncpg.Connection) -> None:
        """Raise unless the batch being published may still go out: the lease is surely
        this relay's (the server may end a leader's session ``LEASE_MIN_S`` after its last
        statement, the batch's read, and another relay publish the rows then — re-sent
        later, past JetStream's duplicate window, they would be stored again, after newer
        events) and its NATS client is connected (nats-py keeps what is published while
        it reconnects, and sends it whenever it is back)."""
        if self._past_fence():
            raise LeadLost(self._silence())
        if conn.is_closed():
            raise ConnectionLost("the relay's PostgreSQL connection closed")
        if not self._nats_connected():
            assert self._nats is not None
            raise ConnectionClosedError if self._nats.is_closed else ConnectionReconnectingError

    def _past_fence(self) -> bool:
        if self._read_at is None:
            return False
        elapsed = asyncio.get_running_loop().time() - self._read_at
        return elapsed > FENCE_SHARE * LEASE_MIN_S

    def _silence(self) -> str:
        assert self._read_at is not None
        elapsed = asyncio.get_running_loop().time() - self._read_at
        return (
            f"{elapsed:.1f} s passed since it was read, and the lead may have passed on;"
            " the relay that leads publishes it"
        )

    def _nats_connected(self) -> bool:
        return self._nats is None or self._nats.is_connected

    async def _lead(self) -> asyncpg.Connection | None:
        """The relay's connection if it holds the lock (taking the lock if it is free),
        else None — after telling the leader, in the same statement, to look for rows."""
        if self._conn is None or self._conn.is_closed():
            self._drop()
            self._conn = await self._connect()
        # Rows a failed pass had published: marked whether or not this relay leads now.
        await self._mark_stored(self._conn)
        if self.leading:
            return self._conn
        if not await self._conn.fetchval(_TRY_LOCK_OR_NOTIFY, RELAY_LOCK_ID, NOTIFY_CHANNEL):
            return None
        # From now on the other relays' NOTIFYs wake this one. Rows committed before the
        # LISTEN are read by the pass that follows: its statement starts after the lock.
        await self._conn.add_listener(NOTIFY_CHANNEL, self._notified)
        self.leading = True
        return self._conn

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def _connect(self) -> asyncpg.Connection:
        """A connection of the relay's own, made as the pool's are (same server and
        credentials): the session lock must not go back to the pool with it."""
        engine = self.sessions.kw["bind"]
        assert isinstance(engine, AsyncEngine)
        options = {
            **asyncpg_connect_args(engine.url, application_name="hubbub-relay"),
            "timeout": CONNECT_TIMEOUT_S,
            "command_timeout": COMMAND_TIMEOUT_S,  # a pass that hangs fails: lead given up
        }
        conn: asyncpg.Connection = await asyncpg.connect(**options)
        try:
            # One round trip: without arguments, execute sends all the statements at once.
            await conn.execute("; ".join(self._lease_settings(conn.get_server_version().major)))
        except BaseException:
            conn.terminate()
            raise
        return conn

    def _lease_settings(self, server_major: int) -> list[str]:
        """Settings that make the lead a lease: the lock is held between passes, so the
        server must end the session of a leader that can no longer act — one cut off
        (TCP keepalives and a send timeout: about 10 s) or frozen (a stopped process, a
        blocked event loop: no statement for ``idle_session_timeout``; a live leader
        polls every ``poll_interval``). Then the lock is free for another relay; the old
        leader, should it come back, does not publish the batch it had read (``_fence``)."""
        settings = [
            "SET tcp_keepalives_idle = 5",
            "SET tcp_keepalives_interval = 2",
            "SET tcp_keepalives_count = 3",
        ]
        if server_major >= 12:
            settings.append("SET tcp_user_timeout = 10000")
        if server_major >= 14:
            idle_ms = int(max(LEASE_MIN_S, LEASE_POLLS * self.poll_interval) * 1000)
            settings.append(f"SET idle_session_timeout = {idle_ms}")
        return settings

    def _drop(self) -> None:
        """Give up the connection at once (and the lock with it): after a failure or a
        cancellation it may be in the middle of a statement."""
        conn, self._conn, self.leading = self._conn, None, False
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def _close(self) -> None:
        conn, self._conn, self.leading = self._conn, None, False
        if conn is not None and not conn.is_closed():
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await conn.close()
            except Exception:
                conn.terminate()

    def _withdraw(self) -> None:
        """Take back what this pass handed to nats-py and it has not sent: the pass
        failed, and the rows go out through the relay that leads next. Sent late — after
        a freeze, once a stalled connection moves again or reconnects — a message could
        reach JetStream past its duplicate window, after newer events."""
        if not isinstance(self.js, AckedPublisher) or not (taken := self.js.withdraw()):
            return
        # Once in a run of failed passes: a stalled connection takes back at every step.
        if not self._took_back_said:
            self._took_back_said = True
            log.warning("outbox relay took back %d messages not yet sent", taken)
        else:
            log.debug("outbox relay took back %d messages not yet sent", taken)

    async def _publish(self, rows: Sequence[Pending], fence: Callable[[], None]) -> dict[int, str]:
        """Publish ``rows``; returns the ones that can never be published, with why.
        Raises when the others failed for a reason that may pass (see the docstring), or
        ``fence`` raised before a row: the batch is given up."""
        refused: dict[int, str] = {}
        # Sent one after another on one connection (so JetStream stores them in id order),
        # acknowledged together.
        acks: list[tuple[Pending, asyncio.Future[Any]]] = []
        try:
            for row in rows:
                reason = None
                try:
                    subject = self.subjects.event(Channel.parse(row.channel))
                except HubbubError as exc:
                    reason = f"not a channel: {row.channel!r} ({exc.message})"
                # PostgreSQL's text of the jsonb, re-encoded compactly as every other JSON.
                # jsonb takes what no reader here does (a number past a double: 1e400).
                try:
                    payload = orjson.dumps(orjson.loads(row.payload))
                except (orjson.JSONDecodeError, orjson.JSONEncodeError) as exc:
                    refused[row.id] = f"payload not sendable as JSON: {exc}"
                    continue
                headers = {"Nats-Msg-Id": row.event_id or f"outbox-{row.id}"}
                # With its header: one over the limit makes the server close the connection.
                size = message_size(payload, headers)
                limit = self._nats.max_payload if self._nats is not None else self.max_payload
                if reason is None and limit and size > limit:
                    reason = f"{size} bytes, over the NATS max_payload of {limit}"
                if reason is not None:
                    refused[row.id] = reason
                    continue
                fence()
                acks.append((row, await self.js.publish_async(subject, payload, headers=headers)))
            if acks:
                # Once more: a freeze after the last row was handed over (nats-py's flusher
                # writes it only when this pass awaits).
                fence()
                await asyncio.wait([ack for _, ack in acks], timeout=self.publish_timeout)
        except BaseException:
            self._withdraw()
            raise
        finally:
            # Whatever ends the pass: the rows acknowledged are stored, and are marked even
            # if it fails; the acknowledgements still awaited are given up (a publisher
            # keeps each until it is done: nats-py's publish_async one of its limited
            # slots).
            stored = [row.id for row, ack in acks if _acknowledged(ack)]
            self._stored.extend(stored)
            self._acknowledged += len(stored)
            acknowledged = set(stored)
            self._first_owed = next((row.id for row in rows if row.id not in acknowledged), None)
            for _, ack in acks:
                ack.cancel()
        for row, ack in acks:
            failure: BaseException
            if ack.cancelled():
                failure = TimeoutError(
                    f"no acknowledgement from JetStream in {self.publish_timeout}s"
                )
            elif isinstance(result := ack.exception(), BadRequestError):
                refused[row.id] = f"refused by JetStream: {result}"  # this message, never
                continue
            elif result is not None:
                failure = result
            else:
                continue
            # Rows of the batch may still be in nats-py's buffer (on a stalled connection
            # it would send them whenever it moves again).
            self._withdraw()
            raise failure
        for row in rows:
            if row.id in refused:
                log.error(
                    "outbox event set aside: it can never be published",
                    extra={"outbox_id": row.id, "type": row.event_type, "reason": refused[row.id]},
                )
        return refused


class AckedPublisher:
    """Publishes to JetStream as ``JetStreamContext.publish_async`` does, returning a
    future of the acknowledgement, but with JetStream's errors kept: nats-py's reply
    handler raises the error JetStream answers with (a 400 for a message it refuses, a 503
    once its storage is used up) instead of setting it on the future, which then never
    completes (nats-io/nats.py#985) — a refused row would be waited for, taken for an
    outage and tried again for good. The acknowledgements come to one subscription of its own,
    made at the first publish (nats-py renews it after a reconnect)."""

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._prefix: str | None = None
        self._waiting: dict[str, asyncio.Future[PubAck]] = {}
        self._count = 0

    async def publish_async(
        self, subject: str, payload: bytes, *, headers: dict[str, str]
    ) -> asyncio.Future[PubAck]:
        if self._prefix is None:
            prefix = self._nc.new_inbox()
            await self._nc.subscribe(f"{prefix}.*", cb=self._answered)
            self._prefix = prefix
        self._count += 1
        token = str(self._count)
        ack: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        self._waiting[token] = ack
        ack.add_done_callback(lambda _: self._waiting.pop(token, None))
        try:
            await self._nc.publish(
                subject, payload, reply=f"{self._prefix}.{token}", headers=headers
            )
        except BaseException:
            ack.cancel()
            raise
        return ack

    async def _answered(self, msg: Msg) -> None:
        ack = self._waiting.get(msg.subject.rpartition(".")[2])
        if ack is None or ack.done():
            return
        if msg.headers and msg.headers.get(Header.STATUS) == StatusCode.SERVICE_UNAVAILABLE:
            ack.set_exception(NoStreamResponseError())  # no responders: no stream takes it
            return
        try:
            answer = orjson.loads(msg.data)
            if "error" in answer:
                ack.set_exception(_api_error(answer["error"]))
                return
            ack.set_result(PubAck.from_response(answer))
        except Exception as exc:
            ack.set_exception(exc)

    def withdraw(self) -> int:
        """Take this publisher's messages that nats-py has not written to its socket yet
        out of its buffer (its publishes, not its subscription); returns how many.
        nats-py keeps its buffer through a reconnect and sends it whenever it can,
        however late. Relies on nats-py's internals, as hubbub/nats_direct.py does
        (``_pending``: one command per publish, and ``_pending_data_size``); a client
        without them (``publishes_directly``) keeps its buffer."""
        client: Any = self._nc
        if self._prefix is None or not publishes_directly(client):
            return 0
        ours = f"{self._prefix}.".encode()
        kept: list[bytes] = []
        taken: list[bytes] = []
        for command in client._pending:
            (taken if _publishes_to(command, ours) else kept).append(command)
        if taken:
            client._pending_data_size -= sum(map(len, taken))
            client._pending[:] = kept
        return len(taken)


def _api_error(error: Any) -> Exception:
    """JetStream's error answer as nats-py's exception of its code's class. nats-py 2.16's
    ``APIError.from_error`` raises it instead of returning it (nats-io/nats.py#985):
    whichever it does, the error is the one returned."""
    try:
        made: object = APIError.from_error(error)
    except APIError as raised:
        return raised
    except Exception:  # an answer nats-py cannot read (a field it does not know)
        code = error.get("code") if isinstance(error, dict) else None
        description = str(error.get("description", error) if isinstance(error, dict) else error)
        if code == 400:
            return BadRequestError(code=400, description=description)
        return APIError(code=code, description=description)
    if isinstance(made, Exception):
        return made
    return APIError(description=str(error))


def _acknowledged(ack: asyncio.Future[Any]) -> bool:
    return ack.done() and not ack.cancelled() and ack.exception() is None


def _publishes_to(command: bytes, reply_prefix: bytes) -> bool:
    """Whether ``command`` (one of nats-py's buffer) is a message published with a reply
    subject starting with ``reply_prefix``: ``PUB <subject> <reply> <size>`` or ``HPUB
    <subject> <reply> <header size> <size>``. Not the publisher's ``SUB <prefix>.* <sid>``:
    taken back, the subscription would be gone at the server, and nats-py (which still
    lists it) would send it again only after a reconnect."""
    fields = command[: command.find(b"\r\n")].split(b" ")
    return fields[0] in (b"PUB", b"HPUB") and len(fields) > 3 and fields[2].startswith(reply_prefix)


class Pending(NamedTuple):
    """An unpublished outbox row, as the relay reads it: ``payload`` is the jsonb's text,
    ``event_id`` its ``id`` (the event's, the de-duplication id), if it has one."""

    id: int
    channel: str
    event_type: str
    payload: str
    event_id: str | None


# Run on the relay's own connection, each statement committing by itself. The lock is
# session-level: held by the leader from one pass to the next. A relay that does not get
# it notifies the one that has it (a NOTIFY is delivered when its statement commits,
# after the commits of the rows it announces).
_TRY_LOCK_OR_NOTIFY = "SELECT pg_try_advisory_lock($1) FROM pg_notify($2, '')"
_LAST_ID = "SELECT max(id) FROM outbox"
_WAITING_UP_TO = (
    "SELECT EXISTS (SELECT 1 FROM outbox"
    " WHERE published_at IS NULL AND failed_at IS NULL AND id <= $1)"
)
_TAKE = """
SELECT id, channel, event_type, payload::text, payload ->> 'id'
  FROM outbox
 WHERE published_at IS NULL AND failed_at IS NULL
 ORDER BY id LIMIT $1
"""
_MARK_PUBLISHED = (
    "UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1::bigint[])"
)
_SET_ASIDE = (
    "UPDATE outbox SET failed_at = now(), last_error = $2, attempts = attempts + 1 WHERE id = $1"
)
