"""``rpc``: an operation of the catalog called over the socket.

The call goes through ``hub/calls.py`` — the same access check, idempotency-key rule,
params validation and bus call as its REST route — so a bad call gets the same error
code either way. What is only a socket is here: the command id (echoed by the reply;
one unanswered rpc per id) and the number of unanswered rpcs per connection.

An rpc takes no task: it is checked, validated and published while its frame is
handled (``calls.start``), and its reply frame is written by a callback when the
worker's reply arrives, or when its deadline passes.
"""

from __future__ import annotations

import logging
import time

from hub import calls, metrics
from hub.ws import commands as cmd
from hub.ws import frames
from hub.ws.connection import Connection
from hubbub.bus import Bus, Reply, new_request_id
from hubbub.config import Settings
from hubbub.contracts.errors import BadRequest, HubbubError, Internal, RateLimited
from hubbub.contracts.operations import Catalog
from hubbub.logs import request_id_var
from hubbub.metric_buckets import Timing

log = logging.getLogger("hubbub.ws")

_OK = "ok"
_UNKNOWN = "unknown"  # the method label of a name that is not in the catalog
_INTERNAL = Internal.code.value
_ID_IN_USE = BadRequest("this id is already in use by an unanswered rpc")
_TOO_MANY = RateLimited("too many unanswered rpcs on this connection", retry_after=1)


class Rpcs:
    def __init__(self, settings: Settings, bus: Bus, catalog: Catalog) -> None:
        self.settings = settings
        self.bus = bus
        self.catalog = catalog
        # rpc_duration's series per (hub app's metrics, method label, outcome). Bounded:
        # the label values are the catalog's methods (or "unknown") and the error codes.
        self._timers: dict[tuple[metrics.HubMetrics, str, str], Timing] = {}

    def start(self, conn: Connection, command: cmd.RpcCall) -> None:
        """Send ``command``'s call; its reply goes out when the worker's comes, its
        refusal (access, params, bus unreachable, its id taken, too many unanswered) at
        once. A refusal is an answer, not a malformed frame: a client that sends a burst
        of well-formed rpcs keeps its socket, and the rpcs taken get their replies."""
        command_id, method, params, idempotency_key = command
        rpc_ids = conn.rpc_ids
        if command_id in rpc_ids:
            conn.send(frames.error(command_id, _ID_IN_USE))
            return
        if len(rpc_ids) >= self.settings.ws_max_rpc_in_flight:
            conn.send(frames.error(command_id, _TOO_MANY))
            return
        begin = time.perf_counter()
        request_id = new_request_id()  # ``calls.request_id()``: a socket has no header
        measured = metrics.current.get()  # the socket's hub app (its request's context)
        op = self.catalog.get(method)
        # An unknown method is one label value, not one per name a client sends.
        label = method if op is not None else _UNKNOWN
        timers = self._timers

        def done(reply: Reply | None, error: BaseException | None) -> None:
            rpc_ids.discard(command_id)
            if reply is None:
                self._answer(conn, command_id, label, request_id, None, error, measured, begin)
                return
            # The usual answer, as ``_answer`` writes and measures it.
            conn.send_frame(frames.result_frame(command_id, reply.raw))
            if measured is not None:
                timer = timers.get((measured, label, _OK))
                if timer is None:
                    timer = self._timer(measured, label, _OK)
                timer.observe(time.perf_counter() - begin)

        token = request_id_var.set(request_id)
        try:
            assert conn.caller is not None
            calls.start(
                self.bus,
                calls.callable_op(op, method),
                conn.caller,
                params,
                done,
                idempotency_key=idempotency_key,
                request_id=request_id,
                measured=measured,
            )
        except Exception as exc:
            self._answer(conn, command_id, label, request_id, None, exc, measured, begin)
        else:
            rpc_ids.add(command_id)
        finally:
            request_id_var.reset(token)

    def _answer(
        self,
        conn: Connection,
        command_id: int,
        label: str,
        request_id: str,
        reply: Reply | None,
        error: BaseException | None,
        measured: metrics.HubMetrics | None,
        begin: float,
    ) -> None:
        """Write the rpc's reply frame (its result, or its error) and measure it."""
        if reply is not None:
            outcome = _OK
            conn.send_frame(frames.result_frame(command_id, reply.raw))
        elif isinstance(error, HubbubError):
            outcome = error.code.value
            conn.send(frames.error(command_id, error))
        else:
            outcome = _INTERNAL
            # Answers come from the reply's processing or a deadline timer, whose context
            # holds another request's id (or none): log under this one's.
            token = request_id_var.set(request_id)
            try:
                log.error("rpc failed", exc_info=error, extra={"conn": conn.id, "method": label})
            finally:
                request_id_var.reset(token)
            conn.send(frames.error(command_id, Internal(request_id=request_id)))
        if measured is not None:
            timer = self._timers.get((measured, label, outcome))
            if timer is None:
                timer = self._timer(measured, label, outcome)
            timer.observe(time.perf_counter() - begin)

    def _timer(self, measured: metrics.HubMetrics, label: str, outcome: str) -> Timing:
        """rpc_duration's series for (``label``, ``outcome``) in ``measured``, kept."""
        timer = self._timers[measured, label, outcome] = measured.rpc_duration.timing(
            label, outcome
        )
        return timer
