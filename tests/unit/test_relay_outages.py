"""The outbox relay tells a JetStream that is away (one "paused" line, slow retries) from
a failure it should log in full."""

from __future__ import annotations

import asyncio

import pytest
from nats.errors import ConnectionReconnectingError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import BadRequestError, NoStreamResponseError, TooManyStalledMsgsError

from hubbub.dependencies import NATS
from workers.relay import OutboxRelay


@pytest.mark.parametrize(
    "exc",
    [
        NoStreamResponseError(),  # a restarted server that has not loaded its streams yet
        NoRespondersError(),
        TooManyStalledMsgsError(),
        NatsTimeout(),
        TimeoutError(),
        ConnectionReconnectingError(),
    ],
    ids=type,
)
def test_jetstream_away_is_an_outage_of_nats(exc: Exception) -> None:
    outage = OutboxRelay._outage(exc)
    assert outage is not None
    assert outage.dependency == NATS


def test_an_ack_future_failed_with_the_error_class_is_an_outage_too() -> None:
    """nats-py fails the acknowledgement future with the class itself; asyncio makes an
    instance of it, and that is what the relay sees."""
    loop = asyncio.new_event_loop()
    try:
        future: asyncio.Future[None] = loop.create_future()
        future.set_exception(NoStreamResponseError)
        exc = future.exception()
    finally:
        loop.close()
    assert isinstance(exc, Exception)
    assert OutboxRelay._outage(exc) is not None


@pytest.mark.parametrize("exc", [ValueError("bug"), BadRequestError()], ids=type)
def test_other_failures_are_not_outages(exc: Exception) -> None:
    assert OutboxRelay._outage(exc) is None
