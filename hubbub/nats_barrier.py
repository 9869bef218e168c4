"""A barrier for NATS subscriptions: the server has them, so a message published from
another connection after it reaches them.

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
the server has every subscription made before the call.
"""

from __future__ import annotations

from nats.aio.client import Client as NATS


async def subscribed(nc: NATS) -> None:
    """Return once the server has every subscription ``nc`` has made so far."""
    await nc.flush()  # the flusher has written the queued SUBs by the time this returns
    await nc.flush()  # a PING behind them: its PONG follows them
