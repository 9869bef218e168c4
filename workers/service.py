"""The worker service: takes requests off NATS and hands each to the actor for its key.

``svc.>`` is consumed in the queue group ``workers``, so each request reaches one worker
process. The subscription callback only decodes, validates and queues: it never awaits
a handler, so one slow key never holds up the others.

A handler that fails because PostgreSQL, Redis or NATS is unreachable answers
``unavailable`` with ``retry_after``, and the worker's ``Health`` logs the outage once
(and its end once); only other failures are bugs, answered ``internal`` with a traceback
in the log.

A request is answered only on a reply inbox (``REPLY_PREFIXES``): a worker may publish
on ``ctl.>``, ``svc.>`` and ``$JS.API.>``, and must not do so for whoever named one of
them as a request's reply subject. A reply larger than NATS carries (its
``max_payload``) is answered ``too_large`` instead: for a read, saying to ask for less;
for an operation that may write, saying the change was applied (``details.applied``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections.abc import Callable, Coroutine
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.context import Context
from handlers.db import ReadPool, transaction_conflict
from handlers.registry import Handler, Registry
from handlers.worker_resources import Resources
from hubbub import tracing
from hubbub.callers import CallerSigner
from hubbub.config import Settings
from hubbub.contracts.envelope import ANONYMOUS, H_ERROR, H_TRACEPARENT, Caller
from hubbub.contracts.errors import (
    NOT_STARTED,
    BadRequest,
    Forbidden,
    HubbubError,
    Internal,
    NotFound,
    Timeout,
    TooLarge,
    Unavailable,
    validation_failed_from,
)
from hubbub.contracts.operations import Operation
from hubbub.contracts.subjects import WORKER_QUEUE, Subjects
from hubbub.dependencies import RETRY_AFTER_S, Health, unavailable
from hubbub.keys import RedisKeys
from hubbub.log_every import LogEvery
from hubbub.logs import request_id_var
from hubbub.nats_barrier import server_has_read
from hubbub.nats_direct import publish_now, publishes_directly
from hubbub.nats_reader import dispatch_raw
from hubbub.natsauth import HUB_INBOX_PREFIX
from hubbub.natsconn import message_size
from workers.actors import ActorSystem, MailboxFull
from workers.eager import start_eager
from workers.execution import TRANSACTION_SLOTS, Slots, Unit, run_unit, take_slot
from workers.metrics import HandlerTimings, OperationTimer, Refusals
from workers.outages import classify, record

BUSY_LOG_S = 10.0  # at most one "backpressure" line this often, with the count
# At most this long for NATS to confirm a draining worker's UNSUB (two round trips).
UNSUB_ROUND_TRIP_S = 2.0
# At most this long, after a drain, to close the read pool's idle connections.
READ_POOL_CLOSE_S = 0.5
# Where replies may go: the hubs' inboxes (hub/app.py connects with HUB_INBOX_PREFIX)
# and nats-py's default one (a client connected without a prefix: the tests', the
# benchmarks'). Nowhere else: not ``ctl.>``, ``svc.>``, ``evt.>`` or ``$JS.API.>``, which
# a worker may publish to and a hub may not. A request that crossed a gateway between
# NATS clusters travels as ``_GR_.<cluster>.<server>.<reply>``, but the server takes the
# prefix off before it hands the request to a client (and puts it back on the answer):
# a worker sees the plain inbox (nats-server's client.go, ``processMsgResults``).
REPLY_PREFIXES = (HUB_INBOX_PREFIX.encode() + b".", b"_INBOX.")
SHUTTING_DOWN = "the worker is shutting down; retry"

log = logging.getLogger(__name__)


class WorkerService:
    def __init__(
        self,
        *,
        settings: Settings,
        registry: Registry,
        nc: NATS,
        sessions: async_sessionmaker[AsyncSession],
        read_sessions: async_sessionmaker[AsyncSession] | None = None,
        redis: Redis,
        on_events: Any = None,
        resources: Resources | None = None,
        health: Health | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.nc = nc
        self.sessions = sessions
        # For read-only operations: sessions on autocommit connections (no transaction),
        # and connections that read without SQLAlchemy (``Context.read_one``), opened on
        # first use: up to HUBBUB_DB_READ_POOL_SIZE besides the engine's pool.
        self.read_sessions = read_sessions or sessions
        self.read_pool = (
            ReadPool(settings.database_url, settings.db_read_pool_size)
            if settings.database_url
            else None
        )
        self.redis = redis
        self.on_events = on_events  # called after a commit that wrote outbox events
        self.resources = resources if resources is not None else Resources()
        self.health = health if health is not None else Health()
        self.subjects = Subjects(settings.namespace)
        self.keys = RedisKeys(settings.namespace)
        self.actors = ActorSystem(
            mailbox_size=settings.mailbox_size,
            max_in_flight=settings.worker_concurrency,
            idle_timeout=settings.actor_idle_s,
        )
        self._sub: Subscription | None = None
        self._callers: dict[bytes, Caller] = {}
        self._signer = CallerSigner.from_settings(settings)  # checks a hub signed the caller
        self._method_at = len(self.subjects.service(""))
        self._routes: dict[str, Route] = {}  # operation name → what serving it needs
        self._by_subject: dict[bytes, Route] = {}  # the same by the request's subject
        self._publish_core = self._publish  # one bound method for every Context
        self._loop: asyncio.AbstractEventLoop | None = None  # the one start() ran on
        self._answering: set[asyncio.Task[None]] = set()  # error answers that waited
        # start()'s loop when replies go into nats-py's buffer (``publish_now``), else None.
        self._reply_loop: asyncio.AbstractEventLoop | None = None
        # hubbub_worker_handler_seconds, in a registry that workers/metrics.py serves.
        self.timings = HandlerTimings()
        # What it would not serve or could not send, counted: served with the timings.
        self.refusals = Refusals()
        self.timings.registry.register(self.refusals)
        # Lines logged at most once per BUSY_LOG_S, with counts: busy refusals
        # ("backpressure"), callers no hub signed, reply subjects that are no inbox,
        # replies over NATS's max_payload, error replies sent without their details.
        self._busy_log = LogEvery(BUSY_LOG_S)
        self._unsigned_log = LogEvery(BUSY_LOG_S)
        self._stray_log = LogEvery(BUSY_LOG_S)
        self._too_large_log = LogEvery(BUSY_LOG_S)
        self._details_log = LogEvery(BUSY_LOG_S)

    async def start(self) -> None:
        # Every operation's series from the start, the alerted outcomes at 0: a series
        # that first appears with an operation's first call (and first error) would
        # increase by nothing, and that error would not alert.
        for op, _ in self.registry:
            self.timings.of(op.name)
        self.actors.start()
        self._loop = asyncio.get_running_loop()
        self._sub = sub = await self.nc.subscribe(
            self.subjects.service_wildcard,
            queue=WORKER_QUEUE,
            cb=self._on_message,
            pending_msgs_limit=self.settings.worker_concurrency * 4,
        )
        # Requests go to _deliver_raw (as bytes: hubbub/nats_reader.py's reader) or
        # _deliver (as a Msg: one with headers) as nats-py reads them; the
        # subscription's task waits on a queue that stays empty. The bound on what is
        # taken is the actors' (max_in_flight: a busy refusal), not the queue's.
        dispatch_raw(sub, self._deliver, self._deliver_raw)
        self._reply_loop = self._loop if publishes_directly(self.nc) else None
        await server_has_read(self.nc)  # in the queue group when start() returns

    async def drain(self, timeout: float | None = None) -> bool:
        """Stop taking messages, finish the ones taken, reject the rest at the deadline."""
        timeout = self.settings.drain_timeout_s if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sub, self._sub = self._sub, None
        if sub is not None:
            await self._stop_taking(sub, timeout)
        finished = await self.actors.drain(max(0.0, deadline - loop.time()))
        if self.read_pool is not None:
            try:
                async with asyncio.timeout(READ_POOL_CLOSE_S):
                    await self.read_pool.close()
            except TimeoutError:  # what is left closes with the process
                log.warning("closing the read connections cut off after %ss", READ_POOL_CLOSE_S)
        for lines in (
            self._busy_log,
            self._unsigned_log,
            self._stray_log,
            self._too_large_log,
            self._details_log,
        ):
            lines.flush()  # a count still waiting for its line is told now
        log.info("worker drained", extra={"finished_in_time": finished})
        return finished

    @property
    def taking(self) -> bool:
        """Whether the worker still takes new requests (``drain`` has not begun)."""
        return self._sub is not None

    async def _stop_taking(self, sub: Subscription, timeout: float) -> None:
        """End the subscription so that requests not yet sent go to other workers, and
        take those NATS sent before it saw the UNSUB: UNSUB, then a round trip whose PONG
        comes after them, then forget the subscription. (nats-py's ``unsubscribe``
        forgets it at once and drops them unanswered, each caller waiting out its
        deadline; its ``drain`` forgets it after one round trip, which can end before
        the server has read the UNSUB: ``hubbub/nats_barrier.py``.) The round trips get
        at most ``UNSUB_ROUND_TRIP_S`` of the drain's ``timeout``; without a link to
        NATS, or past that, the subscription is forgotten as it stands."""
        nc = self.nc
        if nc.is_connected:
            try:
                async with asyncio.timeout(min(timeout, UNSUB_ROUND_TRIP_S)):
                    await nc._send_unsubscribe(sub._id)
                    await server_has_read(nc)
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("ending the request subscription's round trip failed: %r", exc)
        # Forgotten here (and not sent again on a reconnect); nothing reaches it later.
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()

    # --- the hot path --------------------------------------------------------------------

    async def _on_message(self, msg: Msg) -> None:
        """nats-py's callback, for a subscription that does not dispatch directly."""
        answer = self._take(msg.subject.encode(), msg.reply.encode(), msg.data, msg.headers)
        if answer is not None:
            await answer

    def _deliver(self, msg: Msg) -> None:
        """A request as a ``Msg`` (one with headers, or read by nats-py's parser)."""
        self._deliver_raw(msg.subject.encode(), msg.reply.encode(), msg.data, msg.headers)

    def _deliver_raw(
        self, subject: bytes, reply: bytes, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """A request, straight from nats-py's message processing (``RawDispatch``):
        taken in the read loop's turn, with no hop through the subscription's queue and
        task. Nothing may escape into nats-py's read loop (it would end the connection)."""
        try:
            answer = self._take(subject, reply, data, headers)
            if answer is not None:  # an error answer: sent now, or by a task if it waits
                task = start_eager(answer, loop=self._loop)
                if task is not None:
                    self._answering.add(task)
                    task.add_done_callback(self._answering.discard)
        except Exception:
            log.exception(
                "a request could not be taken", extra={"subject": subject.decode(errors="replace")}
            )

    def _take(
        self, subject: bytes, reply: bytes, data: bytes, headers: dict[str, str] | None
    ) -> Coroutine[Any, Any, None] | None:
        """Decode, check and queue one request (``reply``: b"" for none); the error
        answer to send, if refused."""
        if reply and not reply.startswith(REPLY_PREFIXES):
            self._drop_stray(subject, reply)
            return None
        try:
            envelope = orjson.loads(data)
        except orjson.JSONDecodeError:
            envelope = None
        if not isinstance(envelope, dict):
            bad = BadRequest("the request body must be a JSON object")
            return self._reply_error(reply, bad, "-")
        raw_id = envelope.get("request_id")
        request_id = raw_id if isinstance(raw_id, str) else "-"
        route = self._by_subject.get(subject) or self._route(subject)
        if route is None:
            method = subject[self._method_at :].decode(errors="replace")
            return self._reply_error(reply, NotFound(f"unknown operation {method!r}"), request_id)
        deadline = envelope.get("deadline")
        try:
            # The caller, believed only with a hub's signature of it and the deadline
            # (hubbub/callers.py); ``null`` (nobody in particular) needs none. Checked
            # before the params: a caller no hub signed learns nothing more than
            # ``forbidden``. Inline, not a method: this runs once a request.
            raw = envelope.get("caller")
            if raw is None:
                caller = ANONYMOUS
            else:
                signed = orjson.dumps(raw)  # the bytes the hub signed; the cache's key
                if not self._signer.verify(signed, deadline, envelope.get("caller_sig")):
                    raise Forbidden("the request's caller is not signed by a hub")
                cached = self._callers.get(signed)  # parsed once per caller
                caller = cached if cached is not None else self._new_caller(raw, signed)
            params = route.validate(envelope.get("params") or {})
        except Forbidden as exc:
            self.refusals.unsigned += 1
            self._unsigned_log.add(_unsigned_line(route.op.name))
            return self._reply_error(reply, exc, request_id)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            return self._reply_error(reply, validation_failed_from(errors), request_id)  # type: ignore[arg-type]
        deadline = deadline / 1000 if isinstance(deadline, (int, float)) else None
        key = envelope.get("idempotency_key")
        if not isinstance(key, str):
            key = None
        # Positional, in Context's field order: the generated __init__ takes positional
        # arguments for less than keywords, and this runs once a request.
        ctx = Context(
            caller,
            request_id,
            self.settings,
            self.redis,
            self.keys,
            self.subjects,
            route.sessions,
            key,
            deadline,
            [],  # emitted
            self.resources,
            self._publish_core,
            route.reads,
        )
        job = Request(self, reply, headers, route, params, ctx)
        try:
            # Actors are named by the key field and its value: ("workspace_id", "<uuid>").
            self.actors.tell((route.key, route.key_of(params)) if route.key_of else None, job)
        except MailboxFull as exc:
            return self._refuse_busy(reply, exc, route.op, request_id)
        return None

    def _route(self, subject: bytes) -> Route | None:
        """The route of a request's subject, found once and then kept; None for an
        operation nobody registered."""
        method = subject[self._method_at :].decode(errors="replace")
        route = self._routes.get(method)
        if route is None:
            found = self.registry.get(method)
            if found is None:
                return None
            op, handler = found
            reads = op.reads_only
            route = self._routes[method] = Route(
                op,
                handler,
                self.read_sessions if reads else self.sessions,
                self.read_pool if reads else None,
                self.timings.of(op.name),
                None if reads else self.resources.get(TRANSACTION_SLOTS, self.settings),
            )
        self._by_subject[subject] = route
        return route

    async def _refuse_busy(
        self, reply: bytes, exc: MailboxFull, op: Operation, request_id: str
    ) -> None:
        busy = Unavailable(
            "the worker is busy; retry shortly", request_id=request_id, reason=NOT_STARTED
        )
        await self._reply_error(reply, busy, request_id)  # the answer first, then the log
        # An overloaded worker refuses many requests a second: one line per
        # ``BUSY_LOG_S`` with the count, not one per refusal.

        def line(count: int) -> None:
            request_id_var.set(request_id)  # for the log line (jobs set their own)
            log.warning(
                "backpressure: %s (%d refusal(s) since the last such line)",
                exc,
                count,
                extra={"op": op.name, "count": count},
            )

        self._busy_log.add(line)

    def _drop_stray(self, subject: bytes, reply: bytes) -> None:
        """A request whose reply subject is no reply inbox: neither run nor answered."""
        self.refusals.dropped += 1

        def line(count: int) -> None:
            log.warning(
                "dropped a request whose reply subject is not a reply inbox: %r "
                "(%d such request(s) since the last such line)",
                reply[:100].decode(errors="replace"),
                count,
                extra={"subject": subject[:200].decode(errors="replace"), "count": count},
            )

        self._stray_log.add(line)

    def reply_too_large(self, size: int, limit: int, op: Operation, request_id: str) -> TooLarge:
        """The error that answers a reply of ``size`` bytes NATS would refuse, logged at
        most once per ``BUSY_LOG_S`` (a caller can ask for it again and again). The
        handler has run: an operation that may write has applied its change (and a
        retry with its idempotency key replays this answer), so the error says so and
        to read the result back, not to ask again."""
        too_large = self.refusals.too_large
        too_large[op.name] = too_large.get(op.name, 0) + 1
        applied = not op.reads_only

        def line(count: int) -> None:
            request_id_var.set(request_id)
            log.warning(
                "a reply of %d bytes is over NATS's max_payload of %d; answered too_large%s "
                "(%d such reply(s) since the last such line)",
                size,
                limit,
                ", its change applied" if applied else "",
                count,
                extra={"op": op.name, "count": count},
            )

        self._too_large_log.add(line)
        if applied:
            return TooLarge(
                f"the change was applied, but its answer ({size} bytes) is larger than the "
                f"message bus carries ({limit} bytes): do not send it again; read the "
                "result back instead (e.g. GET it)",
                request_id=request_id,
                applied=True,
            )
        return TooLarge(
            f"the answer ({size} bytes) is larger than the message bus carries ({limit} "
            "bytes); ask for less at a time, e.g. a smaller page (limit)",
            request_id=request_id,
        )

    def _details_dropped(self, error: HubbubError, size: int, request_id: str) -> None:
        """An error reply too long for NATS went without its details: logged at most once
        per ``BUSY_LOG_S``, with the count."""

        def line(count: int) -> None:
            request_id_var.set(request_id)
            log.warning(
                "error details dropped: too long (a %s reply of %d bytes; "
                "%d such reply(s) since the last such line)",
                error.code.value,
                size,
                count,
                extra={"code": error.code.value, "count": count},
            )

        self._details_log.add(line)

    def _new_caller(self, raw: Any, signed: bytes) -> Caller:
        """A signed caller not cached yet: parsed once, then kept by its signed bytes."""
        caller = Caller.model_validate(raw)
        if len(self._callers) > 10_000:
            self._callers.clear()
        self._callers[signed] = caller
        return caller

    async def _reply_error(self, reply: bytes, error: HubbubError, request_id: str) -> None:
        if not reply:
            return
        body = error.to_dict()
        if error.status >= 500 and "request_id" not in error.details:
            # Into this reply only: one error may answer many jobs (a drain's refusals).
            body["details"] = {**error.details, "request_id": request_id}
        payload = orjson.dumps(body)
        headers = {H_ERROR: error.code.value}
        # NATS counts the header with the payload against its max_payload.
        if (size := message_size(payload, headers)) > self.nc.max_payload:
            # Only details grow this long (a validation's list of errors): the code and
            # the message stay, so the caller still learns what failed.
            self._details_dropped(error, size, request_id)
            body["details"] = {"request_id": request_id}
            payload = orjson.dumps(body)
        try:
            await self.nc.publish(reply.decode(), payload, headers=headers)
        except Exception as exc:
            request_id_var.set(request_id)  # for the log line (jobs set their own)
            outage = classify(exc)
            if outage is None:
                log.exception("could not send an error reply")
            else:  # the caller's deadline will tell it; the outage is logged once
                record(self.health, outage, exc)

    async def _publish(self, subject: str, payload: bytes) -> None:
        await self.nc.publish(subject, payload)


class Route:
    """What serving one operation needs, looked up once per operation, not per request."""

    __slots__ = ("key", "key_of", "op", "reads", "sessions", "slots", "timer", "unit", "validate")

    def __init__(
        self,
        op: Operation,
        handler: Handler,
        sessions: async_sessionmaker[AsyncSession],
        reads: ReadPool | None,
        timer: OperationTimer,
        slots: Slots | None,
    ) -> None:
        self.op = op
        self.unit = Unit(op, handler)  # the handler, and what running it takes
        self.key = op.key  # the params field that names the actor, if any
        self.key_of = operator.attrgetter(op.key) if op.key else None
        self.sessions = sessions  # autocommit ones for read-only operations
        self.reads = reads  # the read pool, for read-only operations
        # The schema's validator itself: ``model_validate`` only forwards to it.
        self.validate = op.params.__pydantic_validator__.validate_python
        self.timer = timer  # its latency histogram's children, labelled once
        self.slots = slots  # the worker's transaction slots, if the operation may write


class Request:
    """One request as an actor job: run the handler, reply once, whatever happens."""

    __slots__ = ("ctx", "headers", "params", "reply", "route", "span", "started", "worker")

    def __init__(
        self,
        worker: WorkerService,
        reply: bytes,
        headers: dict[str, str] | None,
        route: Route,
        params: BaseModel,
        ctx: Context,
    ) -> None:
        self.worker = worker
        self.reply = reply  # where the answer goes (b"": nowhere)
        self.headers = headers  # the request's NATS headers, if any
        self.route = route
        self.params = params
        self.ctx = ctx  # what the handler gets
        self.span: tracing.Span | None = None  # with tracing on: this job's

    async def run(self) -> None:
        ctx = self.ctx
        # Set, never reset: each job sets its own id before anything logs, so the next
        # job of an actor logs its own, and no reset token is kept per job.
        request_id_var.set(ctx.request_id)
        if tracing.tracer is not None and self.span is None:
            await self._run_traced()
            return
        self.started = time.perf_counter()
        slot_held = False  # a transaction slot, if it needs one; till then nothing started
        try:
            if ctx.deadline is not None and time.time() > ctx.deadline:
                # The caller has given up: doing the work now would only surprise it.
                await self.reject(Timeout("the request expired before a worker took it"))
                return
            route = self.route
            slots = route.slots
            if slots is not None and not slots.try_take():
                await take_slot(slots, ctx)
            slot_held = True
            body = await run_unit(
                route.unit, ctx, self.params, slots, self.worker.on_events, slot_taken=True
            )
        except HubbubError as exc:
            await self.reject(exc)
            return
        except asyncio.CancelledError:
            # Cancelled (a drain's deadline) while it waited for a slot, it never started:
            # the hub sends it to another worker. Else it may have, and the caller decides.
            if slot_held:
                await self.reject(Unavailable(SHUTTING_DOWN))
            else:
                await self.reject(Unavailable(SHUTTING_DOWN, reason=NOT_STARTED))
            raise
        except Exception as exc:
            await self.failed(exc)
            return
        reply = self.reply
        worker = self.worker
        if reply and len(body) > worker.nc.max_payload:  # NATS would refuse it
            size, limit = len(body), worker.nc.max_payload
            await self.reject(worker.reply_too_large(size, limit, self.route.op, ctx.request_id))
            return
        self.route.timer.ok.observe(time.perf_counter() - self.started)
        health = worker.health
        if health.down:  # something works again: let the probes look now
            health.nudge()
        if reply:
            try:
                # ``nats_direct.publish_now`` (the subject comes from the server's own MSG
                # line: no space or line break); when that is not the plain case it does
                # nothing, and ``Client.publish`` decides.
                loop = worker._reply_loop
                if loop is None or not publish_now(worker.nc, loop, reply, b"", body):
                    await worker.nc.publish(reply.decode(), body)
            except Exception as exc:  # NATS is away: the caller's deadline tells it
                outage = classify(exc)
                if outage is None:
                    log.exception("could not send a reply", extra={"op": self.route.op.name})
                else:
                    record(health, outage, exc)

    async def _run_traced(self) -> None:
        """``run`` inside this job's span: a child of the caller's (the ``traceparent``
        header), current while the handler runs, so its SQL spans hang under it."""
        op = self.route.op.name
        span = tracing.start_span(
            f"worker {op}",
            traceparent=(self.headers or _NO_HEADERS).get(H_TRACEPARENT),
            remote=True,
            kind=tracing.SpanKind.SERVER,
            attributes={"hubbub.operation": op, "hubbub.request_id": self.ctx.request_id},
        )
        assert span is not None
        self.span = span
        token = tracing.activate(span)
        try:
            await self.run()
        finally:
            tracing.deactivate(token)
            span.end()

    async def failed(self, exc: Exception) -> None:
        """A handler raised something other than a ``HubbubError``: an outage of a
        dependency (``unavailable``, logged once per outage), a transaction PostgreSQL
        ended to settle a conflict (``unavailable``: nothing applied, retry; logged with
        its traceback each time, for a deadlock shows two paths that lock in different
        orders) or a bug (``internal``, with its traceback)."""
        if transaction_conflict(exc):
            log.warning(
                "PostgreSQL ended the transaction to settle a conflict; answered retry",
                exc_info=exc,
                extra={"op": self.route.op.name, "user_id": self.ctx.caller.user_id},
            )
            await self.reject(
                Unavailable(
                    "this request conflicted with another and was rolled back; retry",
                    retry_after=RETRY_AFTER_S,
                    request_id=self.ctx.request_id,
                )
            )
            return
        outage = classify(exc)
        if outage is None:
            log.exception(
                "handler failed",
                extra={"op": self.route.op.name, "user_id": self.ctx.caller.user_id},
            )
            await self.reject(Internal("internal error", request_id=self.ctx.request_id))
            return
        record(self.worker.health, outage, exc)
        await self.reject(unavailable(outage, self.ctx.request_id))

    async def reject(self, error: HubbubError) -> None:
        outcome = error.code.value
        # A job still queued when the worker stops is refused without having started.
        started: float | None = getattr(self, "started", None)
        if started is not None:
            self.route.timer.outcome(outcome).observe(time.perf_counter() - started)
        if self.span is not None:
            tracing.failed(self.span, outcome)
        await self.worker._reply_error(self.reply, error, self.ctx.request_id)


def _unsigned_line(op: str) -> Callable[[int], None]:
    def line(count: int) -> None:
        log.warning(
            "refused a request whose caller no hub signed "
            "(%d such request(s) since the last such line)",
            count,
            extra={"op": op, "count": count},
        )

    return line


_NO_HEADERS: dict[str, str] = {}
