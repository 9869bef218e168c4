"""A barrier for NATS commands: the server has read every ``SUB`` and ``UNSUB`` a
connection has queued, so a message published from another connection after it reaches
the subscriptions made before it, and no longer those ended before it.

``await nc.subscribe(...); await nc.flush()`` does not prove that: nats-py queues the
``SUB`` for its flusher task but writes a flush's ``PING`` straight to the socket, so the
``PING`` can leave first and its ``PONG`` come back before the server has read the
``SUB``. The server handles each connection's commands in order, but different
connections concurrently: a request another connection sends right then can find no
subscriber (``NoRespondersError``), and a message published then is not delivered. A
message sent later on the *same* connection is safe (the server reads it after the
``SUB``); the barrier is for what another connection or another system (Redis, a
worker) does next. A second ``PING`` is written after the flusher has sent the ``SUB``
(the flusher runs while the first flush waits for its ``PONG``), so its ``PONG`` means
the server has read every command queued before the call, and has sent the connection
every message it routed to it before reading them.
"""

from __future__ import annotations

from nats.aio.client import Client as NATS


async def server_has_read(nc: NATS) -> None:
    """Return once the server has read every command ``nc`` has queued so far."""
    await nc.flush()  # the flusher has written the queued commands by the time this returns
    await nc.flush()  # a PING behind them: its PONG follows them
