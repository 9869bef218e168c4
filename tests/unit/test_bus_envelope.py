"""The envelope Bus.request writes is valid JSON with every field, whatever the inputs."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
import pytest
from nats.aio.msg import Msg

from hubbub.bus import Bus
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.operations import Access, Empty, NoParams, Operation
from hubbub.contracts.subjects import Subjects

OP = Operation("test.op", NoParams, Empty, Access.PUBLIC)


class FakeNats:
    """Answers every request with ``{}`` on its reply subject, as a worker would."""

    is_connected = True
    max_payload = 1_048_576

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, Any]] = []
        self.inbox_cb: Any = None

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str, cb: Any) -> object:
        self.inbox_cb = cb
        return object()

    async def publish(
        self, subject: str, payload: bytes, reply: str = "", headers: Any = None
    ) -> None:
        self.sent.append((subject, payload, headers))
        reply_msg = Msg(_client=cast(Any, self), subject=reply, data=b"{}")
        asyncio.get_running_loop().call_soon(asyncio.ensure_future, self.inbox_cb(reply_msg))


@pytest.mark.parametrize(
    ("request_id", "idempotency_key", "caller"),
    [
        (None, None, None),
        ('a "quoted"\\ id', 'key "1"', Caller(kind=CallerKind.USER, user_id="u1")),
        ("", "k", None),
    ],
)
async def test_envelope(request_id: str | None, idempotency_key: str | None, caller: Any) -> None:
    nc = FakeNats()
    bus = Bus(cast(Any, nc), Subjects("ns"))
    reply = await bus.request(
        OP,
        {"x": 1},
        caller=caller,
        request_id=request_id,
        idempotency_key=idempotency_key,
        timeout=3,
        traceparent="00-abc",
    )
    assert reply.raw == b"{}"
    assert reply.value == Empty()
    subject, body, headers = nc.sent[0]
    assert subject == "ns.svc.test.op"
    assert headers == {"traceparent": "00-abc"}
    envelope = orjson.loads(body)
    assert envelope["params"] == {"x": 1}
    assert envelope["caller"] == (None if caller is None else caller.model_dump(exclude_none=True))
    assert isinstance(envelope["deadline"], int)
    if request_id:
        assert envelope["request_id"] == request_id
    else:
        assert len(envelope["request_id"]) == 32
    if idempotency_key is None:
        assert "idempotency_key" not in envelope
    else:
        assert envelope["idempotency_key"] == idempotency_key
