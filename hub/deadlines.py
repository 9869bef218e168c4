"""The whole-request deadline at the hub (``HUBBUB_REQUEST_TIMEOUT_S``).

Every HTTP request but the WebSocket (which lives for hours; each RPC on it keeps its
operation's timeout) gets ``request_timeout_s`` from the moment its headers have been
read until its answer: receiving the body, and waiting for the worker.

* **The bus call.** The hub's bus (``DeadlineBus``) asks a worker with the sooner of the
  operation's timeout and what is left of the request's time, so the envelope's
  deadline (which the worker keeps to) never runs past it, and a slow worker answers
  ``504 timeout`` with the operation's name, as any bus timeout does.
* **The body.** A client that sends its headers and then trickles or stalls its body is
  cut off at the deadline: ``408 request_timeout`` and the connection closed, so it
  cannot hold a handler forever.
* **Anything else** still running ``DEADLINE_GRACE_S`` after the deadline (a Redis
  call, a hook) is cancelled and answered ``504 timeout``. The grace lets the bus's
  own timeout, which fires at the deadline, answer first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiohttp import web

from hub.problems import problem_response
from hub.state import SETTINGS
from hubbub.bus import Bus
from hubbub.contracts.errors import RequestTimeout, Timeout
from hubbub.contracts.operations import Operation
from hubbub.logs import request_id_var

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WS_PATH = "/ws"
DEADLINE_GRACE_S = 0.25

# The running request's task and its deadline (event loop time). Only that task's bus
# calls keep to it: a task it starts (one that outlives it) has a life of its own.
_deadline: ContextVar[tuple[asyncio.Task[Any], float] | None] = ContextVar(
    "hubbub_request_deadline", default=None
)


def time_left() -> float | None:
    """Seconds left of the current request's deadline; None outside a REST request."""
    current = _deadline.get()
    if current is None or current[0] is not asyncio.current_task():
        return None
    return current[1] - asyncio.get_running_loop().time()


@web.middleware
def request_deadline(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """The deadline for an HTTP request; the WebSocket upgrade is handed straight on, so
    no frame of this middleware is kept for the socket's life."""
    if request.path == WS_PATH:
        return handler(request)
    return _within_deadline(request, handler)


async def _within_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    timeout_s = request.app[SETTINGS].request_timeout_s
    task = asyncio.current_task()
    assert task is not None
    deadline = asyncio.get_running_loop().time() + timeout_s
    token = _deadline.set((task, deadline))
    try:
        async with asyncio.timeout_at(deadline + DEADLINE_GRACE_S) as scope:
            return await handler(request)
    except TimeoutError:
        if not scope.expired():
            raise  # someone else's timeout: the usual error handling decides
        if not request.content.is_eof():
            response = problem_response(
                RequestTimeout(f"the request body did not arrive within {timeout_s:g}s"),
                request,
            )
            response.force_close()  # what is left of the body is never read
            return response
        raise Timeout(f"no answer within {timeout_s:g}s", request_id=request_id_var.get()) from None
    finally:
        _deadline.reset(token)


class DeadlineBus(Bus):
    """The hub's bus: a request made while a REST request runs keeps to its deadline."""

    def timeout_of(self, op: Operation, timeout: float | None, request_id: str | None) -> float:
        """``timeout`` (else the operation's), cut to what is left of the running REST
        request's deadline; ``Timeout`` when nothing is left."""
        timeout = op.timeout if timeout is None else timeout  # ``Bus.timeout_of``
        current = _deadline.get()
        if current is None:  # outside a REST request (a socket's rpc): the usual case
            return timeout
        left = time_left()
        if left is None:
            return timeout
        if left <= 0:
            raise Timeout(
                f"no time left to ask for {op.name} (HUBBUB_REQUEST_TIMEOUT_S)",
                request_id=request_id,
            )
        return min(timeout, left)
