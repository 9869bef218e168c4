"""The requesting side of the NATS bus: send an operation to the workers, get its result.

Used by the hub for every REST call and WS ``rpc``, and by backend services that call
operations directly. Failures come back as the typed errors of ``contracts.errors``:
NATS unreachable → ``Unavailable`` at once; no worker listening (NATS "no responders")
→ asked again with backoff until shortly before the deadline, then ``Unavailable``; no
reply before the deadline → ``Timeout``; a reply that does not match the operation's
result schema → ``BadGateway`` (logged with the request id, never passed on).

"No responders" and a worker's "busy" refusal both mean the request never started, so
sending it again is safe for any operation, mutating or not: workers come and go (a
restart, a rolling deploy, resubscribing after a NATS reconnect) and a backlog released
at once fills mailboxes for a moment. One warning when no worker answers and one line
when workers answer again (``Health``), not one per retry. A bus that no worker has
answered yet (a hub started before its workers) logs that it waits for them, at info
level, and warns only if the wait goes on (``Health.waiting_for``).

A read (an operation that only reads: ``Operation.reads_only``) may also be sent again
while it is in flight: when a worker dies holding it, the hub's ``WorkerWatch`` has
``Replies.resend`` publish every waiting read once more, and the first reply answers it.
Anything that may write is never sent twice this way — a mutation, and as much a write
without an idempotency key (``auth.refresh`` rotating a token: its copy would find the
token used and end the session as stolen): the copy would go out for writes live
workers are doing too, and a copy of one that failed could succeed after its caller was
told it failed. Its caller gets ``timeout`` at the deadline (and may retry a mutation
with its idempotency key).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import ValidationError

from hubbub.callers import CallerSigner
from hubbub.contracts.envelope import H_ERROR, H_TRACEPARENT, Caller
from hubbub.contracts.errors import (
    NOT_STARTED,
    BadGateway,
    HubbubError,
    Timeout,
    TooLarge,
    Unavailable,
)
from hubbub.contracts.operations import Operation
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import Health, nats_outage
from hubbub.logs import request_id_var
from hubbub.natsconn import message_size
from hubbub.replies import OnReply, Replies

log = logging.getLogger(__name__)


def caller_json(caller: Caller | None) -> bytes:
    """A caller's wire form; cached because one connection sends many requests.

    By identity first: a WebSocket connection keeps one ``Caller`` for all its requests,
    and hashing a frozen pydantic model (what ``lru_cache`` does on every call) costs
    more than the lookup saves. Equal but distinct callers (one per REST request) still
    hit the ``lru_cache`` behind it.
    """
    if caller is None:
        return b"null"
    hit = _by_identity.get(id(caller))
    if hit is not None and hit[0] is caller:  # the entry holds the caller: ids can't recur
        return hit[1]
    wire = _caller_json(caller)
    if len(_by_identity) >= 4096:
        _by_identity.clear()
    _by_identity[id(caller)] = (caller, wire)
    return wire


_by_identity: dict[int, tuple[Caller, bytes]] = {}


@lru_cache(maxsize=4096)
def _caller_json(caller: Caller) -> bytes:
    return orjson.dumps(caller.model_dump(exclude_none=True, mode="json"))


_ID_PREFIX = uuid.uuid4().hex[:16]  # this process; the counter makes each id unique in it
_ids = itertools.count(1)


def new_request_id() -> str:
    """32 hex characters, unique across processes (a random prefix) and cheap."""
    return "%s%016x" % (_ID_PREFIX, next(_ids))  # noqa: UP031  # cheaper than an f-string


# Asking again a request that never started: the first pause, doubling up to the cap.
RETRY_FIRST_S = 0.02
RETRY_MAX_S = 0.25
# Retries stop this long before the deadline (a fifth of a shorter timeout): a worker
# found at the last moment needs time to do the work.
RETRY_MARGIN_S = 0.25
WORKERS = "workers"  # what the Health calls the workers of the bus's requests

BUS_UNREACHABLE = "the message bus is unreachable; retry shortly"
_UNAVAILABLE = "unavailable"
_NOT_STARTED = b'"reason":"%b"' % NOT_STARTED.encode()  # a refusal of work never started
# The envelope (hubbub/contracts/envelope.py), without and with the hub's signature.
_BODY = b'{"params":%b,"caller":%b,"deadline":%d,"request_id":%b%b}'
_SIGNED_BODY = b'{"params":%b,"caller":%b,"caller_sig":"%b","deadline":%d,"request_id":%b%b}'


# What ``Bus.start`` calls back with: the reply, or the error ``Bus.request`` would raise.
Done = Callable[["Reply | None", "BaseException | None"], None]


class Reply(NamedTuple):  # a tuple: cheaper to build than a frozen dataclass
    raw: bytes  # the result JSON as the worker sent it (already validated)
    value: Any  # the validated result


class Bus:
    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        health: Health | None = None,
        *,
        signer: CallerSigner | None = None,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.replies = Replies(nc)
        # Hubs sign each caller (hubbub/callers.py); workers refuse unsigned user callers.
        self.signer = signer
        self.health = health if health is not None else Health()
        self._subject_of: dict[str, str] = {}  # operation name → its subject
        # A worker has answered one of this bus's requests. Until then, no worker is a
        # wait (``Health.waiting_for``: workers starting after the hub), not an outage.
        self.answered = False
        self._tasks: set[asyncio.Future[None]] = set()  # what ``start`` left to a task

    def timeout_of(self, op: Operation, timeout: float | None, request_id: str | None) -> float:
        """How long a request may take: ``timeout``, else the operation's. Both
        ``request`` and ``start`` ask here, so a bus that keeps to a deadline of its own
        (the hub's ``DeadlineBus``) says so once."""
        return op.timeout if timeout is None else timeout

    def _envelope(
        self,
        op: Operation,
        params: dict[str, Any] | bytes,
        caller: Caller | None,
        request_id: str | None,
        idempotency_key: str | None,
        timeout: float,
        traceparent: str | None,
    ) -> tuple[str, bytes, dict[str, str] | None, str, float]:
        """(subject, body, headers, request id, deadline in epoch seconds) of a request."""
        if request_id:
            request_id_json = orjson.dumps(request_id)  # the caller's: may need escaping
        else:
            request_id = new_request_id()
            request_id_json = b'"%b"' % request_id.encode()  # hex digits: nothing to escape
        params_json = params if isinstance(params, bytes) else orjson.dumps(params)
        deadline = time.time() + timeout
        caller_wire = caller_json(caller)
        deadline_ms = int(deadline * 1000)
        key_json = b""
        if idempotency_key is not None:
            key_json = b',"idempotency_key":' + orjson.dumps(idempotency_key)
        # One formatting operation, not eight concatenations.
        if caller is None or self.signer is None:
            body = _BODY % (params_json, caller_wire, deadline_ms, request_id_json, key_json)
        else:
            body = _SIGNED_BODY % (
                params_json,
                caller_wire,
                self.signer.sign(caller_wire, deadline_ms),
                deadline_ms,
                request_id_json,
                key_json,
            )
        # Only trace context travels as a header: headers cost both sides a parse per
        # message, and the body is parsed anyway.
        headers = {H_TRACEPARENT: traceparent} if traceparent is not None else None
        size = message_size(body, headers)
        if size > self.nc.max_payload:
            # nats-py checks the body alone: with its headers, the server would refuse it
            # by closing the connection (hubbub/natsconn.py). Nothing is sent.
            raise TooLarge(
                f"the request is {size} bytes on the bus, over the {self.nc.max_payload} "
                "bytes a NATS message may have",
                request_id=request_id,
            )
        subject = self._subject_of.get(op.name)
        if subject is None:
            subject = self._subject_of[op.name] = self.subjects.service(op.name)
        if not self.nc.is_connected:
            # Reconnecting (a publish would only be buffered, and its reply lost) or
            # closed: say so now, not at the deadline. The connection logs the outage.
            raise Unavailable(BUS_UNREACHABLE, request_id=request_id)
        return subject, body, headers, request_id, deadline

    async def request(
        self,
        op: Operation,
        params: dict[str, Any] | bytes,
        *,
        caller: Caller | None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        traceparent: str | None = None,
    ) -> Reply:
        timeout = self.timeout_of(op, timeout, request_id)
        subject, body, headers, request_id, deadline = self._envelope(
            op, params, caller, request_id, idempotency_key, timeout, traceparent
        )
        try:
            try:
                msg = await self.replies.request(
                    subject, body, timeout=timeout, headers=headers, resendable=op.reads_only
                )
            except NoRespondersError:
                msg = await self._again(op, subject, body, headers, deadline, timeout, None)
            else:
                if msg.headers and msg.headers.get(H_ERROR) == _UNAVAILABLE:
                    msg = await self._again(op, subject, body, headers, deadline, timeout, msg)
                elif WORKERS in self.health.down or not self.answered:
                    self._worker_answered()
        except Exception as exc:
            raise _failure(op, exc, timeout, request_id) from None
        return decode_reply(op, msg.data, msg.headers, request_id)

    def start(
        self,
        op: Operation,
        params: dict[str, Any] | bytes,
        done: Done,
        *,
        caller: Caller | None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        traceparent: str | None = None,
    ) -> None:
        """``request`` without a task: the request is sent now, and ``done`` gets the
        reply, or what ``request`` would raise, once it comes — never from within this
        call. What fails before anything is sent (NATS unreachable) raises here, and
        ``done`` is not called."""
        timeout = self.timeout_of(op, timeout, request_id)
        subject, body, headers, request_id, deadline = self._envelope(
            op, params, caller, request_id, idempotency_key, timeout, traceparent
        )
        rid = request_id
        # What asking again needs, in one tuple: the reply's callback holds fewer cells.
        again = (subject, body, headers, deadline, timeout)

        def on_reply(msg: Msg | None, error: BaseException | None) -> None:
            if msg is not None:
                headers = msg.headers
                if headers and headers.get(H_ERROR) == _UNAVAILABLE:
                    self._spawn(self._slowly(op, *again, rid, done, msg))
                    return
                if WORKERS in self.health.down or not self.answered:
                    self._worker_answered()
                token = request_id_var.set(rid)  # what is logged from here on names it
                try:
                    reply = decode_reply(op, msg.data, headers, rid)
                except HubbubError as exc:
                    done(None, exc)
                else:
                    done(reply, None)
                finally:
                    request_id_var.reset(token)
            elif isinstance(error, NoRespondersError):
                self._spawn(self._slowly(op, *again, rid, done, None))
            else:
                assert error is not None
                done(None, _failure(op, error, again[4], rid))

        if not self.replies.ready:
            # The connection's first request subscribes the inbox: in a task.
            self._spawn(
                self._open_and_send(op, subject, body, headers, timeout, rid, on_reply, done)
            )
            return
        try:
            self.replies.start(
                subject,
                body,
                on_reply,
                timeout=timeout,
                headers=headers,
                resendable=op.reads_only,
            )
        except Exception as exc:
            raise _failure(op, exc, timeout, request_id) from None

    async def _open_and_send(
        self,
        op: Operation,
        subject: str,
        body: bytes,
        headers: dict[str, str] | None,
        timeout: float,
        request_id: str,
        on_reply: OnReply,
        done: Done,
    ) -> None:
        try:
            await self.replies.open()
            self.replies.start(
                subject,
                body,
                on_reply,
                timeout=timeout,
                headers=headers,
                resendable=op.reads_only,
            )
        except Exception as exc:
            done(None, _failure(op, exc, timeout, request_id))

    async def _slowly(
        self,
        op: Operation,
        subject: str,
        body: bytes,
        headers: dict[str, str] | None,
        deadline: float,
        timeout: float,
        request_id: str,
        done: Done,
        refusal: Msg | None,
    ) -> None:
        """What ``start`` hands a task: asking again a request that never started."""
        try:
            msg = await self._again(op, subject, body, headers, deadline, timeout, refusal)
            reply = decode_reply(op, msg.data, msg.headers, request_id)
        except HubbubError as exc:
            done(None, exc)
        except Exception as exc:
            done(None, _failure(op, exc, timeout, request_id))
        else:
            done(reply, None)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _worker_answered(self) -> None:
        """A worker answered: the workers are up (one line if they were down, or waited
        for), and a later "no responders" is an outage."""
        self.answered = True
        if WORKERS in self.health.down:
            self.health.came_back(WORKERS)

    def _no_worker(self, op: Operation) -> None:
        """NATS found no worker for ``op``: the workers went away, or, if none has
        answered this bus yet, they are not there yet."""
        why = f"no worker answers {op.name}"
        if self.answered:
            self.health.went_down(WORKERS, why)
        else:
            self.health.waiting_for(WORKERS, why)

    async def _again(
        self,
        op: Operation,
        subject: str,
        body: bytes,
        headers: dict[str, str] | None,
        deadline: float,
        timeout: float,
        refusal: Msg | None,
    ) -> Msg:
        """Send a request that never started again, with backoff, until shortly before
        its ``deadline`` (epoch seconds: the one the envelope carries). ``refusal`` is the
        worker's "busy" answer, or None for NATS's "no responders". Returns the first
        real answer, or the last refusal; raises ``NoRespondersError`` when still no
        worker listens."""
        if refusal is not None and _NOT_STARTED not in refusal.data:
            return refusal  # unavailable for another reason: the work may have started
        margin = min(RETRY_MARGIN_S, timeout / 5)
        pause = RETRY_FIRST_S
        while True:
            if refusal is None:
                self._no_worker(op)
            if time.time() + pause > deadline - margin:
                if refusal is None:
                    raise NoRespondersError
                return refusal
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_S)
            try:
                msg = await self.replies.request(
                    subject,
                    body,
                    timeout=deadline - time.time(),
                    headers=headers,
                    resendable=op.reads_only,
                )
            except NoRespondersError:
                refusal = None
                continue
            self._worker_answered()
            if not (msg.headers and msg.headers.get(H_ERROR) == _UNAVAILABLE):
                return msg
            if _NOT_STARTED not in msg.data:
                return msg
            refusal = msg


def _failure(op: Operation, exc: BaseException, timeout: float, request_id: str) -> BaseException:
    """The error a failed request is answered with: NATS's own errors become ``Unavailable``
    or ``Timeout``; anything else is itself."""
    if isinstance(exc, NoRespondersError):
        return Unavailable(f"no worker is serving {op.name}", request_id=request_id)
    if isinstance(exc, NatsTimeout):
        return Timeout(f"{op.name} did not answer within {timeout:g}s", request_id=request_id)
    if isinstance(exc, Exception) and nats_outage(exc) is not None:
        return Unavailable(BUS_UNREACHABLE, request_id=request_id)
    return exc


def decode_reply(
    op: Operation, data: bytes, headers: dict[str, str] | None, request_id: str
) -> Reply:
    if headers and H_ERROR in headers:
        try:
            error = orjson.loads(data)
        except orjson.JSONDecodeError:
            error = None
        if not isinstance(error, dict) or error.get("code") != headers[H_ERROR]:
            log.error(
                "malformed error reply",
                extra={"op": op.name, "reply": data[:500].decode("utf-8", "replace")},
            )
            raise BadGateway(request_id=request_id)
        raise HubbubError.from_dict(error)
    try:
        # The validator itself: TypeAdapter.validate_json only forwards to it.
        value = op.result_adapter.validator.validate_json(data)
    except ValidationError as exc:
        log.error(
            "worker reply failed validation",
            extra={"op": op.name, "errors": exc.errors(include_url=False, include_input=False)},
        )
        raise BadGateway(request_id=request_id) from None
    return Reply(data, value)
