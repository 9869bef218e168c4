"""``rpc``: an operation of the catalog called over the socket.

The call goes through ``hub/calls.py`` — the same access check, idempotency-key rule,
params validation and bus call as its REST route — so a bad call gets the same error
code either way. What is only a socket is here: the command id (echoed by the reply;
one unanswered rpc per id) and the number of unanswered rpcs per connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client.metrics import Histogram

from hub import calls, metrics
from hub.ws import commands as cmd
from hub.ws import frames
from hub.ws.connection import Connection
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.errors import BadRequest, HubbubError, Internal, RateLimited
from hubbub.contracts.operations import Catalog
from hubbub.logs import request_id_var

log = logging.getLogger("hubbub.ws")

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class Rpcs:
    def __init__(self, settings: Settings, bus: Bus, catalog: Catalog, spawn: Spawn) -> None:
        self.settings = settings
        self.bus = bus
        self.catalog = catalog
        self.spawn = spawn
        # rpc_duration's child per (hub app's metrics, method label, outcome): labels()
        # takes a lock and builds a key tuple on every call. Bounded: the label values are
        # the catalog's methods (or "unknown") and the error codes.
        self._timers: dict[tuple[metrics.HubMetrics, str, str], Histogram] = {}

    def start(self, conn: Connection, command: cmd.Rpc) -> None:
        """Run ``command`` in the background (its reply goes out when the worker's
        comes); ``CommandError`` if its id is taken or too many are unanswered."""
        if command.id in conn.rpc_ids:
            raise cmd.CommandError(
                command.id, BadRequest("this id is already in use by an unanswered rpc")
            )
        if len(conn.rpc_ids) >= self.settings.ws_max_rpc_in_flight:
            raise cmd.CommandError(
                command.id,
                RateLimited("too many unanswered rpcs on this connection", retry_after=1),
            )
        conn.rpc_ids.add(command.id)
        self.spawn(self.run(conn, command))

    async def run(self, conn: Connection, command: cmd.Rpc) -> None:
        request_id = calls.request_id()
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        outcome = "ok"
        try:
            assert conn.caller is not None
            reply = await calls.call(
                self.bus,
                calls.operation(self.catalog, command.method),
                conn.caller,
                command.params,
                idempotency_key=command.idempotency_key,
                request_id=request_id,
            )
            conn.send(frames.result(command.id, reply.raw))
        except HubbubError as exc:
            outcome = exc.code.value
            conn.send(frames.error(command.id, exc))
        except Exception:
            outcome = Internal.code.value
            log.exception("rpc failed", extra={"conn": conn.id, "method": command.method})
            conn.send(frames.error(command.id, Internal(request_id=request_id)))
        finally:
            conn.rpc_ids.discard(command.id)
            measured = metrics.current.get()  # the socket's hub app (its request's context)
            if measured is not None:
                # An unknown method is one label value, not one per name a client sends.
                method = (
                    command.method if self.catalog.get(command.method) is not None else "unknown"
                )
                timer = self._timers.get((measured, method, outcome))
                if timer is None:
                    timer = measured.rpc_duration.labels(method, outcome)
                    self._timers[measured, method, outcome] = timer
                timer.observe(time.perf_counter() - start)
            request_id_var.reset(token)
