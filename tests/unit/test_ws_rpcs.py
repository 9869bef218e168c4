"""A socket's rpcs without a task each: the reply frame is written when the bus calls
back; ids and the unanswered-rpc cap are held from the send to the answer; a call
refused before the bus is answered at once and holds nothing.

A fake bus records each call's callback; a fake socket records the frames written.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest

from hub.ws import commands as cmd
from hub.ws.rpc import Rpcs
from hubbub.bus import Done, Reply
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Timeout, Unavailable
from tests.support import ops


class FakeBus:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, Done]] = []
        self.refuse: Exception | None = None

    def start(self, op: Any, params: bytes, done: Done, **kwargs: Any) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.calls.append((op.name, params, done))


class FakeSocket:
    id = "c1"

    def __init__(self) -> None:
        self.rpc_ids: set[int] = set()
        self.caller = Caller(kind=CallerKind.USER, user_id="u1", role="member", session_id="s1")
        self.written: list[dict[str, Any]] = []

    def send(self, payload: bytes) -> None:
        self.written.append(orjson.loads(payload))

    def send_frame(self, frame: bytes) -> None:
        self.written.append(orjson.loads(frame[4:] if frame[1] == 126 else frame[2:]))


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def rpcs(bus: FakeBus) -> Rpcs:
    settings = SimpleNamespace(ws_max_rpc_in_flight=2)
    return Rpcs(cast(Any, settings), cast(Any, bus), ops.catalog_with_tests())


def call(command_id: int, method: str = "test.echo", **params: Any) -> cmd.RpcCall:
    return cmd.RpcCall(command_id, method, params, None)


def test_the_reply_frame_is_written_when_the_bus_answers(rpcs: Rpcs, bus: FakeBus) -> None:
    conn = FakeSocket()
    rpcs.start(cast(Any, conn), call(7, seq=3))
    [(name, params, done)] = bus.calls
    assert (name, orjson.loads(params)) == ("test.echo", {"seq": 3})
    assert conn.written == []
    assert conn.rpc_ids == {7}
    done(Reply(b'{"key":"k","seq":3,"payload":{}}', None), None)
    assert conn.written == [{"id": 7, "result": {"key": "k", "seq": 3, "payload": {}}}]
    assert conn.rpc_ids == set()


def test_an_error_from_the_bus_is_the_rpcs_error(rpcs: Rpcs, bus: FakeBus) -> None:
    conn = FakeSocket()
    rpcs.start(cast(Any, conn), call(1))
    rpcs.start(cast(Any, conn), call(2))
    bus.calls[0][2](None, Timeout("test.echo did not answer within 5s"))
    bus.calls[1][2](None, RuntimeError("a bug"))
    assert conn.written[0]["id"] == 1
    assert conn.written[0]["error"]["code"] == "timeout"
    assert conn.written[1]["id"] == 2
    assert conn.written[1]["error"]["code"] == "internal"
    assert "a bug" not in conn.written[1]["error"]["message"]
    assert conn.rpc_ids == set()


def test_ids_and_the_cap_are_held_until_the_answer(rpcs: Rpcs, bus: FakeBus) -> None:
    """A taken id and the cap are refused with an error frame, as an answer: not raised
    (the socket's count of malformed frames is not touched)."""
    conn = FakeSocket()
    rpcs.start(cast(Any, conn), call(1))
    rpcs.start(cast(Any, conn), call(1))
    rpcs.start(cast(Any, conn), call(2))
    rpcs.start(cast(Any, conn), call(3))
    assert [(f["id"], f["error"]["code"]) for f in conn.written] == [
        (1, "bad_request"),
        (3, "rate_limited"),
    ]
    assert conn.written[1]["error"]["details"] == {"retry_after": 1}
    assert len(bus.calls) == 2
    bus.calls[0][2](Reply(b"{}", None), None)
    rpcs.start(cast(Any, conn), call(3))  # one answered: room again
    assert conn.rpc_ids == {2, 3}


def test_a_call_refused_before_the_bus_is_answered_at_once(rpcs: Rpcs, bus: FakeBus) -> None:
    conn = FakeSocket()
    rpcs.start(cast(Any, conn), call(1, "no.such.method"))
    rpcs.start(cast(Any, conn), call(2, seq="not a number"))
    bus.refuse = Unavailable("the message bus is unreachable; retry shortly")
    rpcs.start(cast(Any, conn), call(3))
    assert [(f["id"], f["error"]["code"]) for f in conn.written] == [
        (1, "not_found"),
        (2, "validation_failed"),
        (3, "unavailable"),
    ]
    assert bus.calls == []
    assert conn.rpc_ids == set()


def test_a_failed_rpc_is_logged_under_its_own_request_id(
    rpcs: Rpcs, bus: FakeBus, caplog: pytest.LogCaptureFixture
) -> None:
    """The answer comes from a reply's processing or a timer, whose context holds another
    request's id: the log line still names this rpc's, the one its error frame gives."""
    from hubbub.logs import install_request_id_factory, request_id_var

    install_request_id_factory()
    conn = FakeSocket()
    rpcs.start(cast(Any, conn), call(1))
    token = request_id_var.set("someone-elses-request")
    try:
        with caplog.at_level("ERROR", logger="hubbub.ws"):
            bus.calls[0][2](None, RuntimeError("a bug"))
    finally:
        request_id_var.reset(token)
    [record] = [r for r in caplog.records if r.getMessage() == "rpc failed"]
    assert record._request_id == conn.written[0]["error"]["details"]["request_id"]
