"""Running one handler as one unit of work: session, idempotency, commit, outbox kick.

A handler's writes, its idempotency record and its outbox events commit together or not
at all; the reply is sent only after the commit, so a caller that hears "done" can rely
on it, and a caller that hears nothing may retry with the same idempotency key.

Operations that may write run only while they hold one of the worker's *transaction
slots*, as many as the engine's pool has connections for requests (``Slots``). Without
that bound, the hundreds of requests a worker takes at once would all queue on the
pool, each opening an overflow connection that is closed again on return, and run long
after their callers gave up. A request waits for a slot at most ``db_wait_s`` and never
past its deadline, and only so many wait (``WAITING_PER_SLOT``): an expired one is
answered ``timeout`` without being run, one that gets no slot in time, or finds too
many waiting, ``unavailable`` with reason "busy" — nothing has started, so the hub
sends it to another worker.

A handler gives its slot back for work that needs no database (argon2) in
``Context.outside_transaction`` and then takes one again (``HeldSlot.take_again``). It
was admitted already and only lent its slot, and it may have done what a re-send would
do again (counted an attempt, run argon2): so it is never refused "busy" then. It goes
ahead of the requests waiting (past the cap on them) and waits as long as its caller
does: past its deadline it is answered ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from handlers import idempotency
from handlers.context import Context
from handlers.registry import Handler
from handlers.worker_resources import ResourceKey
from hubbub.config import Settings
from hubbub.contracts.envelope import Caller
from hubbub.contracts.errors import NOT_STARTED, Timeout, Unavailable
from hubbub.contracts.operations import Operation

# Connections of the engine's pool kept from writing requests: one for reads, and one for
# the janitor, the invalidation redoer or the mail sender. (The outbox relay has a
# connection of its own, outside the pool: it holds a session lock.)
BACKGROUND_CONNECTIONS = 2
# Requests that may wait for a slot, per slot: beyond, a request is refused at once
# ("busy", for another worker), not queued where it could only wait longer.
WAITING_PER_SLOT = 8


class Slots:
    """A counting semaphore whose waiters give up at a time of their own, first come
    first served — except that those taking a slot again (``take_first``) go before the
    rest. Taking a free slot costs no await."""

    __slots__ = ("_first", "_waiters", "free", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._first: deque[asyncio.Future[None]] = deque()  # served before ``_waiters``
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        if self.free > 0 and not self._waiters and not self._first:
            self.free -= 1
            return True
        return False

    async def take(self, wait: float) -> bool:
        """Take a slot within ``wait`` seconds; False if none came free in time."""
        if self.try_take():
            return True
        if wait <= 0:
            return False
        return await self._wait(self._waiters, wait)

    async def take_first(self, wait: float | None) -> bool:
        """Take a slot ahead of the waiters of ``take`` (after those of ``take_first``
        before it), within ``wait`` seconds (None: however long it takes); False if none
        came free in time."""
        if self.free > 0 and not self._first:
            self.free -= 1
            return True
        if wait is not None and wait <= 0:
            return False
        return await self._wait(self._first, wait)

    async def _wait(self, queue: deque[asyncio.Future[None]], wait: float | None) -> bool:
        waiter = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            async with asyncio.timeout(wait):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # Handed a slot just as the wait ended: pass it on.
                self.release()
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            if isinstance(exc, TimeoutError):
                return False
            raise
        return True  # the releaser handed its slot over: ``free`` is unchanged

    @property
    def waiting(self) -> int:
        return len(self._first) + len(self._waiters)

    def release(self) -> None:
        for queue in (self._first, self._waiters):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self.free += 1


def _slots(settings: Settings) -> Slots:
    return Slots(max(1, settings.db_pool_size - BACKGROUND_CONNECTIONS))


TRANSACTION_SLOTS = ResourceKey("transaction slots", _slots)


async def take_slot(slots: Slots, ctx: Context) -> None:
    """Wait for a transaction slot as long as the request may; raise if it may not."""
    if slots.waiting >= slots.size * WAITING_PER_SLOT:
        raise Unavailable(
            "the worker is busy; retry shortly", request_id=ctx.request_id, reason=NOT_STARTED
        )
    wait = ctx.settings.db_wait_s
    if ctx.deadline is not None:
        left = ctx.deadline - time.time()
        if left <= 0:
            raise Timeout("the request expired before a worker took it")
        if left < wait:
            if not await slots.take(left):
                raise Timeout("the request expired before a database connection came free")
            return
    if not await slots.take(wait):
        raise Unavailable(
            "the worker is busy; retry shortly", request_id=ctx.request_id, reason=NOT_STARTED
        )


class HeldSlot:
    """A request's hold on one of ``slots`` (the handler's ``ctx.slot``): given back at
    most once for each time it was taken, whichever of the commit, the end of the
    request or ``Context.outside_transaction`` comes first."""

    __slots__ = ("held", "slots")

    def __init__(self, slots: Slots) -> None:
        self.slots = slots
        self.held = True  # taken before it was made

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()

    async def take_again(self, ctx: Context) -> None:
        """Take a slot again after ``Context.outside_transaction``: ahead of the requests
        waiting for their first, and for as long as the request may (its deadline; none:
        until one comes free). ``Timeout`` once the deadline has passed — also when it
        passed outside and a slot is free: its caller has been answered already."""
        if self.held:
            return
        wait = None
        if ctx.deadline is not None:
            wait = ctx.deadline - time.time()
            if wait <= 0:
                raise Timeout(
                    "the request's deadline passed while it worked outside its transaction"
                )
        # A cancelled wait holds none.
        if not await self.slots.take_first(wait):
            raise Timeout(
                "the request expired waiting for a database connection after its work "
                "outside the transaction"
            )
        self.held = True


def _answer_what_committed() -> None:
    """Cancelled in its after-commit actions (at a drain's deadline): the change has
    committed, so the job answers with its result, not "retry" (a retry without an
    idempotency key would apply it twice). The actions left undone are what a worker
    that dies right after a commit leaves: durable invalidations are redone from their
    rows; a cache bump lapses at the cache's TTL."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def caller_scope(caller: Caller) -> str:
    """Whose idempotency keys these are: keys never collide between callers."""
    if caller.user_id:
        return f"user:{caller.user_id}"
    if caller.service:
        return f"service:{caller.service}"
    return "anonymous"


class Unit:
    """What running one operation's handler takes, worked out once per operation (the
    worker keeps one per route) instead of once per request."""

    __slots__ = ("handler", "mutating", "name", "op", "self_claiming", "to_json", "writes")

    def __init__(self, op: Operation, handler: Handler) -> None:
        self.op = op
        self.handler = handler
        self.name = op.name
        self.writes = not op.reads_only  # runs only while it holds a transaction slot
        self.mutating = op.mutating  # takes an idempotency key
        # Marked at its definition (``idempotency.claims_itself``), so before any Unit.
        self.self_claiming = handler in idempotency.SELF_CLAIMING
        # The adapter's serializer itself: ``TypeAdapter.dump_json`` only forwards to it.
        self.to_json = op.result_adapter.serializer.to_json


async def run_handler(
    op: Operation,
    handler: Handler,
    ctx: Context,
    params: BaseModel,
    on_events: Callable[[], None] | None = None,
) -> bytes:
    """Run ``handler`` in a transaction and return its result JSON."""
    unit = Unit(op, handler)
    slots = ctx.resource(TRANSACTION_SLOTS) if unit.writes else None
    return await run_unit(unit, ctx, params, slots, on_events)


async def run_unit(
    unit: Unit,
    ctx: Context,
    params: BaseModel,
    slots: Slots | None,
    on_events: Callable[[], None] | None = None,
    *,
    slot_taken: bool = False,
) -> bytes:
    """``run_handler`` of a ``Unit`` worked out already; ``slots``: the worker's
    transaction slots when the operation may write (``unit.writes``), else None;
    ``slot_taken``: the caller has taken one of them already (``take_slot``) for it."""
    if slots is not None and not slot_taken and not slots.try_take():
        await take_slot(slots, ctx)
    # The slot to give back once the transaction has ended (or for a while before).
    hold = ctx.slot = None if slots is None else HeldSlot(slots)
    try:
        key = ctx.idempotency_key if unit.mutating else None
        to_json = unit.to_json
        claim = None
        if unit.self_claiming:
            claim = ctx.claim = idempotency.Claim(
                caller_scope(ctx.caller),
                key,
                unit.name,
                idempotency.request_fingerprint(unit.name, _dump(params)) if key else "",
                lambda result: to_json(result, warnings=False),
                ctx.settings.idempotency_ttl_s,
            )
        elif key is not None:
            scope = caller_scope(ctx.caller)
            stored = await idempotency.claim(
                ctx.session,
                caller=scope,
                key=key,
                operation=unit.name,
                fingerprint=idempotency.request_fingerprint(unit.name, _dump(params)),
                ttl_s=ctx.settings.idempotency_ttl_s,
            )
            if stored is not None:
                return stored  # replay: the first response, nothing applied again
        try:
            result = await unit.handler(ctx, params)
        except idempotency.Replay as replay:
            ctx.discard_after_commit()
            return replay.response  # the first response, nothing applied again
        if claim is None:
            body = to_json(result, warnings=False)
            if key is not None:
                await idempotency.complete(ctx.session, caller=scope, key=key, response=body)
        else:
            if claim.response is None:
                raise RuntimeError(f"{unit.name}: its handler did not store its response")
            body = claim.response
        if ctx.has_pending_commit:  # reads on the read pool have nothing to commit
            ctx.committed = False  # this commit's, not a handler's own earlier one
            try:
                if hold is None:
                    await ctx.commit()
                else:
                    # The slot goes back once the connection is: the after-commit
                    # actions (a cache invalidation in Redis) need none.
                    await ctx.commit(hold.give_back)
            except asyncio.CancelledError:
                if not ctx.committed:
                    raise
                _answer_what_committed()
    except BaseException:
        ctx.discard_after_commit()
        if ctx.has_session:
            # If the connection died with the failure (PostgreSQL went away) there is
            # nothing to roll back, and the caller must hear about the failure, not this.
            with contextlib.suppress(Exception):
                await ctx.session.rollback()
        raise
    finally:
        try:
            if ctx.has_session:
                await ctx.session.close()
        finally:
            if hold is not None:  # whatever came next, the transaction has ended
                hold.give_back()
    if ctx.emitted and on_events is not None:
        on_events()
    return body


def _dump(params: BaseModel) -> Any:
    """``params.model_dump(mode="json")``: the same serializer call, without the wrapper's
    keyword handling (the request's fingerprint must not change)."""
    return params.__pydantic_serializer__.to_python(params, mode="json")
