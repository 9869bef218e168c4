"""A request too large for one NATS message is ``too_large`` before it is sent — counting
its headers, which nats-py leaves out of its own check (over the limit with them, the
server would close the connection for good)."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS

from hubbub.bus import Bus
from hubbub.contracts.envelope import H_TRACEPARENT
from hubbub.contracts.errors import TooLarge
from hubbub.natsconn import message_size
from tests.support import ops
from workers.app import RunningWorker

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def params_filling(bus: Bus, room: int) -> bytes:
    """Params whose request body is ``room`` bytes under the connection's limit."""
    small = b'{"payload":{"x":""}}'
    _, body, *_ = bus._envelope(ops.echo, small, None, "r-1", None, 5.0, None)
    pad = bus.nc.max_payload - room - len(body)
    return b'{"payload":{"x":"' + b"a" * pad + b'"}}'


async def test_a_request_its_traceparent_takes_over_the_limit_is_too_large(
    worker: RunningWorker, bus: Bus, nc: NATS
) -> None:
    params = params_filling(bus, room=10)
    _, body, *_ = bus._envelope(ops.echo, params, None, "r-1", None, 5.0, None)
    assert len(body) <= nc.max_payload < message_size(body, {H_TRACEPARENT: TRACEPARENT})

    with pytest.raises(TooLarge):
        await bus.request(ops.echo, params, caller=None, request_id="r-1", traceparent=TRACEPARENT)

    assert nc.is_connected
    reply = await bus.request(ops.echo, {"seq": 2}, caller=None, traceparent=TRACEPARENT)
    assert reply.value.seq == 2


async def test_a_request_over_the_limit_without_headers_is_too_large(
    worker: RunningWorker, bus: Bus, nc: NATS
) -> None:
    params = params_filling(bus, room=-10)
    with pytest.raises(TooLarge):
        await bus.request(ops.echo, params, caller=None, request_id="r-1")
    assert nc.is_connected
