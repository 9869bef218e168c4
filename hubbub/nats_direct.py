"""Two shortcuts into nats-py's ``Client`` for the hot paths: the hub's replies and the
worker's requests and replies.

* **Taking messages as they are read** (``dispatch_directly``): a subscription with a
  callback gets its messages through an ``asyncio.Queue`` and a task that awaits the
  callback — a queue put, a task switch and a coroutine per message. Swapping the queue
  for a ``Dispatch`` hands each message to a plain function while nats-py's reader
  processes it. The function must not block and must not raise.
* **Publishing without coroutines** (``publish_now``): ``Client.publish`` in its plain
  case appends a PUB command to the client's pending buffer and wakes its flusher task;
  here the command is appended without its coroutines, its subject checks (the callers'
  subjects are valid by construction) and its future per publish, and the buffer is
  written to the socket by one plain callback at the end of the loop turn
  (``_write_pending``) — every command of the turn in one write, as the flusher would,
  without waking a task for it. When the socket's own buffer is already full (a slow
  server), the flusher is woken instead, as ``Client.publish`` would: it writes, then
  awaits the socket's drain, and commands gather in the pending buffer meanwhile (up to
  nats-py's pending limit) — stock nats-py's backpressure. When the case is not plain
  (not connected, a payload over the server's limit, the buffer full, no flusher)
  nothing is done and False says so: the caller then uses ``Client.publish``.

Both depend on nats-py internals, checked by ``dispatches_directly`` and
``publishes_directly`` before use (and by tests/integration/test_bus_start.py and
test_worker_direct.py against the real client): should a release change them, the
subscription's own callback still gets every message, and ``Client.publish`` publishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.aio.transport import TcpTransport

_CONNECTED = NATS.CONNECTED
# Above this many bytes in the socket's buffer, the write is left to nats-py's flusher,
# which awaits the socket's drain after each write (asyncio's default high-water mark).
WRITE_BUFFER_LIMIT = 64 * 1024


class Dispatch(asyncio.Queue[Msg]):
    """A subscription's pending queue that never holds anything: nats-py puts each
    message with ``put_nowait`` (``Client._process_msg``), and it is delivered there and
    then. A queue still, for what else nats-py asks of it (``empty``, ``join`` when
    draining)."""

    def __init__(self, sub: Subscription, deliver: Callable[[Msg], None]) -> None:
        super().__init__()
        self._sub = sub
        self._deliver = deliver

    def put_nowait(self, item: Msg) -> None:
        self._sub._pending_size = 0  # nothing is pending: no slow-consumer drop
        self._deliver(item)


def dispatches_directly(sub: Subscription) -> bool:
    """Whether ``sub`` takes its messages from a queue nats-py fills with ``put_nowait``,
    as nats-py's ``Subscription`` does today."""
    return isinstance(getattr(sub, "_pending_queue", None), asyncio.Queue) and isinstance(
        getattr(sub, "_pending_size", None), int
    )


def dispatch_directly(sub: Subscription, deliver: Callable[[Msg], None]) -> bool:
    """Have ``deliver`` take ``sub``'s messages as nats-py reads them; False (and the
    subscription's callback keeps them) when nats-py is not as expected."""
    if not dispatches_directly(sub):
        return False
    sub._pending_queue = Dispatch(sub, deliver)
    return True


def publishes_directly(nc: NATS) -> bool:
    """Whether ``nc`` has the buffer and flusher ``publish_now`` writes to, as nats-py's
    ``Client`` has them today."""
    return (
        isinstance(getattr(nc, "_pending", None), list)
        and isinstance(getattr(nc, "_pending_data_size", None), int)
        and isinstance(getattr(nc, "_max_pending_size", None), int)
        and isinstance(getattr(nc, "_max_payload", None), int)
        and isinstance(getattr(nc, "_flush_queue", None), asyncio.Queue)
        and isinstance(getattr(nc, "stats", None), dict)
        and hasattr(nc, "_flusher_task")
        and hasattr(nc, "_status")
        and hasattr(nc, "_transport")
    )


def publish_now(
    nc: NATS, loop: asyncio.AbstractEventLoop, subject: bytes, reply: bytes, payload: bytes
) -> bool:
    """Publish ``payload`` to ``subject`` (with ``reply``, or b"" for none) as
    ``Client.publish`` does in its plain case; False, with nothing done, when it is not
    the plain case. Only for a client ``publishes_directly`` accepted."""
    client: Any = nc
    if client._status != _CONNECTED:
        return False
    size = len(payload)
    if size > client._max_payload:
        return False
    if reply:
        command = b"PUB %b %b %d\r\n%b\r\n" % (subject, reply, size, payload)
    else:
        command = b"PUB %b %d\r\n%b\r\n" % (subject, size, payload)
    pending = client._pending_data_size + len(command)
    flusher = client._flusher_task
    if 0 < client._max_pending_size < pending or flusher is None or flusher.done():
        return False
    client._pending.append(command)
    client._pending_data_size = pending
    stats = client.stats
    stats["out_msgs"] += 1
    stats["out_bytes"] += size
    if client not in _writes_due:  # the turn's first: write the buffer at its end
        _writes_due.add(client)
        loop.call_soon(_write_pending, client, loop)
    return True


_writes_due: set[Any] = set()  # clients whose buffer a ``_write_pending`` will write


def _write_pending(client: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Write the client's pending commands to its socket, in one call, as nats-py's
    flusher does; or wake the flusher when the socket's buffer is full (it awaits the
    socket's drain after writing) or the socket is not the plain TCP one. Not
    connected: the commands stay pending, and nats-py writes them after its reconnect."""
    _writes_due.discard(client)
    if not client._pending_data_size or client._status != _CONNECTED:
        return
    writer = _plain_writer(client._transport)
    if writer is None or writer.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
        queue = client._flush_queue
        if queue is not None and queue.empty():  # the flusher sleeps: wake it
            queue.put_nowait(loop.create_future())
        return
    writer.writelines(client._pending)
    client._pending = []
    client._pending_data_size = 0


def _plain_writer(transport: object) -> asyncio.StreamWriter | None:
    """The stream writer of nats-py's plain TCP transport (TLS included), else None."""
    if type(transport) is not TcpTransport:
        return None
    writer = getattr(transport, "_io_writer", None)
    return writer if isinstance(writer, asyncio.StreamWriter) else None
