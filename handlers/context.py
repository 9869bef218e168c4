"""What a handler gets to do its work: who asks, a database session, Redis, and ``emit``.

Handlers are plain async functions ``(ctx, params) -> result``. They know nothing of
HTTP, sockets or NATS: the worker runtime builds the context, commits the session when
the handler returns (then runs the ``after_commit`` actions), and rolls it back when it
raises (and drops them). A handler with slow work that needs no database (argon2) does
it in ``outside_transaction``, holding none of the worker's transaction slots.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.db import Query, ReadPool, Row
from handlers.idempotency import Claim
from handlers.outages import classify
from handlers.outbox import OutboxEvent
from handlers.worker_resources import ResourceKey, Resources
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.envelope import Caller
from hubbub.contracts.errors import Unauthorized
from hubbub.contracts.events import Event, EventType
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys

log = logging.getLogger(__name__)
T = TypeVar("T")
# Publishes one core NATS message (no history, no retry): for control messages to hubs.
Publisher = Callable[[str, bytes], Awaitable[None]]
AfterCommit = Callable[[], Awaitable[None]]


class SlotHold(Protocol):
    """The request's hold on one of its worker's transaction slots (the worker runtime's:
    workers/execution.py), for ``Context.outside_transaction``."""

    def give_back(self) -> None:
        """Give the slot back, if it is held; a second call does nothing."""

    async def take_again(self, ctx: Context) -> None:
        """Take a slot again for ``ctx``'s request, ahead of the requests waiting for
        their first and no longer than the request may; ``Timeout`` if it gets none by
        its deadline (also one that passed while it was outside). Held already, it does
        nothing."""


@dataclass(eq=False, slots=True)
class Context:
    caller: Caller
    request_id: str
    settings: Settings
    redis: Redis
    keys: RedisKeys
    subjects: Subjects
    sessions: async_sessionmaker[AsyncSession]
    idempotency_key: str | None = None
    deadline: float | None = None  # unix time after which the caller stopped waiting
    # The events this transaction wrote to the outbox (their rows, or the events of rows
    # a statement of the handler's own wrote): when any, the relay is woken at commit.
    emitted: list[OutboxEvent | Event] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    publish: Publisher | None = None
    # Read-only operations: connections that read outside SQLAlchemy (``read_one``).
    reads: ReadPool | None = None
    # The transaction slot the request holds, set by the runtime for an operation that
    # may write: ``outside_transaction`` gives it back for a while.
    slot: SlotHold | None = None
    _session: AsyncSession | None = None
    _after_commit: list[AfterCommit] | None = None  # made by the first ``after_commit``
    # For a handler that claims its idempotency key itself (``idempotency.claims_itself``).
    claim: Claim | None = None
    committed: bool = False  # ``commit`` got past the commit: the change is in the database
    _outside: bool = False  # in ``outside_transaction``: no session may be opened

    @property
    def session(self) -> AsyncSession:
        """The request's session, opened on first use; the runtime commits it."""
        if self._session is None:
            if self._outside:
                raise RuntimeError("no session outside the transaction (outside_transaction)")
            self._session = self.sessions()
        return self._session

    @contextlib.asynccontextmanager
    async def outside_transaction(self) -> AsyncIterator[None]:
        """Do what the body does holding no transaction slot, connection or transaction:
        for slow work that needs no database — argon2, tens of milliseconds a password
        and longer while the hasher's threads are busy, which would otherwise keep the
        worker's other writes from the slot.

        Only before the request's session is opened (``RuntimeError`` after: its
        connection and transaction would stay held); nor may the body open it. The
        slot is given back on entry. When the body returns, the request takes a slot
        again, ahead of the requests waiting for their first (it is never refused
        "busy", which would have the hub send it again and its work outside done twice),
        and waits for one until its deadline: ``Timeout`` then, the body's work done for
        nothing. When the body raises, the request ends without one. What was read before (a
        password's hash) may have changed meanwhile: a change that rests on it reads
        it again in the transaction, locked, and checks that it still holds. (A
        request with an idempotency key for a ``mutating`` operation has claimed the
        key in its session before the handler runs: the hook refuses there.)"""
        if self._session is not None:
            raise RuntimeError("outside_transaction: the request's session is open already")
        if self._outside:
            raise RuntimeError("outside_transaction: outside already")
        slot = self.slot
        if slot is not None:
            slot.give_back()
        self._outside = True
        try:
            yield
        finally:
            self._outside = False
        if slot is not None:
            await slot.take_again(self)

    async def read_one(self, query: Query, *args: Any) -> Row | None:
        """The first row of ``query`` with ``args`` (positional, in its parameters' order).

        In a read-only operation it runs on the read pool, with no session and no
        transaction; otherwise (or once the request has a session) in the request's
        transaction, so that it sees the transaction's own writes and locks.
        """
        if self.reads is not None and self._session is None:
            return await self.reads.fetchrow(query, *args)
        result = await self.session.execute(query.statement, query.bind(args))
        row: Row | None = result.mappings().first()
        return row

    async def read_all(self, query: Query, *args: Any) -> list[Row]:
        """All rows of ``query``, where ``read_one`` would run it."""
        if self.reads is not None and self._session is None:
            return await self.reads.fetch(query, *args)
        result = await self.session.execute(query.statement, query.bind(args))
        return list(result.mappings().all())

    @property
    def has_session(self) -> bool:
        return self._session is not None

    @property
    def has_pending_commit(self) -> bool:
        """Whether ``commit`` has anything to do: a session or queued after-commit actions."""
        return self._session is not None or bool(self._after_commit)

    def resource(self, key: ResourceKey[T]) -> T:
        """The worker's shared instance of a resource (password hasher, mailer, ...)."""
        return self.resources.get(key, self.settings)

    def after_commit(self, action: AfterCommit) -> None:
        """Run ``action`` once this request's transaction has committed; never if it rolls
        back. For effects outside PostgreSQL that must follow a change, not precede it
        (Redis deny-list entries, control messages, sending mail). A failing action is
        logged: the change it follows has committed and the caller will be told so."""
        if self._after_commit is None:
            self._after_commit = [action]
        else:
            self._after_commit.append(action)

    async def commit(self, committed: Callable[[], None] | None = None) -> None:
        """Commit now, then run the ``after_commit`` actions queued so far.

        The runtime calls this when the handler returns (with ``committed``, called once
        the session's connection is back in the pool, before the actions). A handler
        calls it itself only when a change must stick although the request then fails —
        e.g. revoking a session family when a reused refresh token is presented, before
        answering 401.
        """
        if self._session is not None:
            await self._session.commit()
        self.committed = True
        if committed is not None:
            committed()
        actions, self._after_commit = self._after_commit, None
        for action in actions or ():
            try:
                await action()
            except Exception as exc:
                outage = classify(exc)
                if outage is None:
                    log.exception("an after-commit action failed")
                else:  # the outage itself is logged once, by the worker's health tracker
                    log.debug("an after-commit action failed: %s is away", outage.dependency)

    def discard_after_commit(self) -> None:
        self._after_commit = None

    @property
    def user_id(self) -> str:
        """The signed-in caller's user id; ``Unauthorized`` for anyone else."""
        if not self.caller.is_user or self.caller.user_id is None:
            raise Unauthorized("sign in first")
        return self.caller.user_id

    def emit(self, channel: Channel, event_type: EventType, data: dict[str, Any]) -> Event:
        """Record an event of a catalog type (``hubbub/contracts/event_types.py``) in the
        outbox, in this transaction: published iff it commits. ``data`` is the type's
        ``data`` model dumped as JSON; a channel of a kind the type does not go to is a
        bug, refused at once."""
        event = self.event(channel, event_type, data)
        row = OutboxEvent(
            channel=event.channel, event_type=event.type, payload=event.model_dump(mode="json")
        )
        self.session.add(row)
        self.emitted.append(row)
        return event

    def event(self, channel: Channel, event_type: EventType, data: dict[str, Any]) -> Event:
        """The event ``emit`` records, not recorded: for a handler that writes its outbox
        row in a statement of its own (and then calls ``emitted_one``)."""
        if channel.kind not in event_type.channels:
            raise ValueError(f"{event_type.name} is not published on {channel.kind.value} channels")
        return Event(
            id=uuid.uuid4().hex,
            type=event_type.name,
            channel=str(channel),
            at=datetime.now(UTC),
            actor=self.caller.user_id,
            request_id=self.request_id,
            data=data,
        )

    def emitted_one(self, event: Event) -> None:
        """Note that this transaction wrote ``event``'s outbox row itself, so the relay is
        woken once it commits."""
        self.emitted.append(event)
