"""hubbub.nats_reader's parser does with any split of a byte stream what nats-py's does.

Two unconnected nats-py clients with the same subscriptions (one dispatched directly, one
with a callback's queue, one with max msgs, one with a small pending-bytes limit, one an
old-style request's future) read the same stream, cut the same way: one with nats-py's
parser, one with the Reader. Everything either leaves behind must be equal: the messages
delivered (subject, reply, data, headers), the control lines handled, the errors
reported, the stats, each subscription's counts and which subscriptions remain.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ProtocolError
from nats.protocol.parser import AWAITING_CONTROL_LINE, AWAITING_MSG_PAYLOAD, Parser

from hubbub.nats_direct import dispatch_directly
from hubbub.nats_reader import Reader, dispatch_raw, read_directly, reads_directly

DIRECT, QUEUED, LIMITED, SLOW, FUTURE = 1, 2, 3, 4, 5
UNKNOWN = 99


def msg(sid: int, payload: bytes, subject: bytes = b"svc.echo", reply: bytes = b"") -> bytes:
    reply_part = reply + b" " if reply else b""
    return b"MSG %b %d %b%d\r\n%b\r\n" % (subject, sid, reply_part, len(payload), payload)


def hmsg(sid: int, headers: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    reply_part = reply + b" " if reply else b""
    total = len(headers) + len(payload)
    return b"HMSG _INBOX.x %d %b%d %d\r\n%b%b\r\n" % (
        sid,
        reply_part,
        len(headers),
        total,
        headers,
        payload,
    )


INFO = b'INFO {"server_id":"abc","max_payload":1048576,"connect_urls":["10.0.0.1:4222"]}\r\n'

# Every kind of line the server sends, in a stream of about a kilobyte.
STREAM = b"".join(
    [
        b"+OK\r\n",
        msg(DIRECT, b"hello"),
        msg(DIRECT, b'{"id":1}', reply=b"_INBOX.abc.1"),
        msg(QUEUED, b"MSG 1 2 3\r\nPING\r\n", subject=b"a.b.c"),
        b"PING\r\n",
        msg(UNKNOWN, b"nobody"),
        msg(DIRECT, b""),
        hmsg(DIRECT, b"NATS/1.0\r\nFoo: bar\r\nBaz: 1\r\n\r\n", b"with headers"),
        hmsg(DIRECT, b"NATS/1.0 503\r\n\r\n", b""),
        b"PONG\r\n",
        hmsg(QUEUED, b"NATS/1.0 404 No Messages\r\n\r\n", b""),
        hmsg(QUEUED, b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 7\r\n\r\n", b""),
        INFO,
        msg(LIMITED, b"one"),
        msg(LIMITED, b"two", reply=b"r.2"),
        msg(LIMITED, b"three: after the auto-unsubscribe"),
        msg(SLOW, b"x" * 40),  # over its pending-bytes limit: a slow consumer's
        msg(SLOW, b"ok"),
        msg(FUTURE, b"answer"),
        b"MSG  spaced  1  4\r\nodd!\r\n",  # not as the server writes it: nats-py's parser
        b"-ERR 'Permissions Violation for Subscription to \"x\"'\r\n",
        msg(QUEUED, b"y" * 300, reply=b"_INBOX.long.reply.subject"),
        hmsg(DIRECT, b"NATS/1.0\r\nA: b\r\n\r\n", b"tail", reply=b"r.h"),
    ]
)


class Recorder:
    """One unconnected client, its subscriptions and everything it was handed."""

    def __init__(self, reader: bool, raw: bool = False) -> None:
        self.nc = NATS()
        self.events: list[Any] = []
        nc: Any = self.nc
        nc._process_ping = self._event("ping")
        nc._process_pong = self._event("pong")
        nc._process_info = self._event("info")
        nc._process_err = self._event("err")
        nc._error_cb = self._error

        self.future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        subs = {
            DIRECT: Subscription(nc, DIRECT, "svc.*", cb=self._unused),
            QUEUED: Subscription(nc, QUEUED, "a.>", cb=self._unused),
            LIMITED: Subscription(nc, LIMITED, "svc.*", cb=self._unused, max_msgs=2),
            SLOW: Subscription(nc, SLOW, "svc.*", cb=self._unused, pending_bytes_limit=32),
            FUTURE: Subscription(nc, FUTURE, "svc.*", future=self.future),
        }
        if raw:  # what the reader handles itself comes as bytes, the rest as a Msg
            assert dispatch_raw(subs[DIRECT], self._deliver, self._raw)
        else:
            assert dispatch_directly(subs[DIRECT], self._deliver)
        nc._subs = dict(subs)
        self.subs = subs
        if reader:
            assert read_directly(self.nc)
            assert type(nc._ps) is Reader

    def _event(self, name: str) -> Any:
        async def record(*args: Any) -> None:
            self.events.append((name, *args))

        return record

    async def _error(self, exc: Exception) -> None:
        self.events.append(("error", type(exc).__name__, getattr(exc, "sid", None)))

    async def _unused(self, msg: Msg) -> None:
        raise AssertionError("no task takes from the queues here")

    def _deliver(self, msg: Msg) -> None:
        self.events.append(("deliver", *describe(msg)))

    def _raw(self, subject: bytes, reply: bytes, data: bytes) -> None:
        # As ``describe`` has it: a message the reader takes itself has no headers.
        self.events.append(
            ("deliver", DIRECT, subject.decode(), reply.decode(), data, None, None, False)
        )

    async def feed(self, chunks: list[bytes]) -> None:
        ps: Any = self.nc._ps  # type: ignore[attr-defined]
        for chunk in chunks:
            await ps.parse(chunk)

    def outcome(self) -> dict[str, Any]:
        nc: Any = self.nc
        queued = {}
        for sid, sub in self.subs.items():
            if sid not in (DIRECT, FUTURE):
                queue = sub._pending_queue
                queued[sid] = [describe(queue.get_nowait()) for _ in range(queue.qsize())]
        return {
            "events": self.events,
            "queued": queued,
            "future": describe(self.future.result()) if self.future.done() else None,
            "stats": {k: nc.stats[k] for k in ("in_msgs", "in_bytes")},
            "received": {sid: sub._received for sid, sub in self.subs.items()},
            "pending": {sid: sub._pending_size for sid, sub in self.subs.items()},
            "subs": sorted(nc._subs),
            "parser": parser_state(nc._ps),
        }


def parser_state(ps: Any) -> tuple[Any, ...]:
    """What a parser keeps for the next read: its sizes count only while it awaits a
    payload (nats-py's keeps the last message's, unread, otherwise)."""
    if ps.state == AWAITING_MSG_PAYLOAD:
        return (bytes(ps.buf), ps.state, ps.needed, ps.header_needed, ps.msg_arg)
    return (bytes(ps.buf), ps.state)


def describe(msg: Msg) -> tuple[Any, ...]:
    return (msg.sid, msg.subject, msg.reply, msg.data, msg.headers, msg._metadata, msg._ackd)


async def both(chunks: list[bytes], raw: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    nats_py, reader = Recorder(reader=False, raw=raw), Recorder(reader=True, raw=raw)
    await nats_py.feed(chunks)
    await reader.feed(chunks)
    return nats_py.outcome(), reader.outcome()


async def test_the_whole_stream_in_one_read_gives_what_nats_py_gives() -> None:
    expected, got = await both([STREAM])
    assert got == expected
    delivered = [e for e in expected["events"] if e[0] == "deliver"]
    assert len(delivered) == 7  # the stream reaches the direct subscription 7 times
    assert ("deliver", DIRECT, "_INBOX.x", "", b"", {"Status": "503"}, None, False) in delivered
    assert ("error", "SlowConsumerError", SLOW) in expected["events"]
    assert expected["subs"] == [DIRECT, QUEUED, SLOW, FUTURE]  # LIMITED: its max reached
    assert expected["parser"] == (b"", AWAITING_CONTROL_LINE)


async def test_the_stream_cut_in_two_at_every_offset_gives_what_nats_py_gives() -> None:
    for cut in range(1, len(STREAM)):
        expected, got = await both([STREAM[:cut], STREAM[cut:]])
        assert got == expected, cut


async def test_a_raw_dispatch_gets_as_bytes_what_nats_py_delivers_as_messages() -> None:
    """The messages the reader takes itself reach a ``RawDispatch`` as their subject,
    reply and payload; the rest (headers, split lines) as nats-py's ``Msg``: the same
    deliveries, stats and state as nats-py's parser gives, however the stream is cut."""
    expected, got = await both([STREAM], raw=True)
    assert got == expected
    assert len([e for e in got["events"] if e[0] == "deliver"]) == 7
    for cut in range(1, len(STREAM)):
        expected, got = await both([STREAM[:cut], STREAM[cut:]], raw=True)
        assert got == expected, cut


async def test_the_stream_read_a_byte_at_a_time_gives_what_nats_py_gives() -> None:
    expected, got = await both([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert got == expected


async def test_the_stream_cut_anywhere_into_many_reads_gives_what_nats_py_gives() -> None:
    rng = random.Random(14)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(2, 12)))
        chunks = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        expected, got = await both(chunks)
        assert got == expected, cuts


async def test_an_unfinished_message_waits_in_the_buffer_as_in_nats_py() -> None:
    for cut in range(1, len(STREAM)):
        expected, got = await both([STREAM[:cut]])
        assert got == expected, cut


@pytest.mark.parametrize(
    "line",
    [b"FOO bar\r\n", b"MSG svc.echo notasid 5\r\nhello\r\n"],
    ids=["unknown", "malformed"],
)
async def test_a_line_nats_py_rejects_raises_its_protocol_error(line: bytes) -> None:
    for reader in (False, True):
        client = Recorder(reader=reader)
        with pytest.raises(ProtocolError):
            await client.feed([msg(DIRECT, b"first") + line + msg(DIRECT, b"never")])
        assert [e[4] for e in client.events if e[0] == "deliver"] == [b"first"]


async def test_info_reaches_the_client_as_json() -> None:
    client = Recorder(reader=True)
    await client.feed([msg(DIRECT, b"a") + INFO + msg(DIRECT, b"b")])
    info = orjson.loads(INFO[5:-2])
    assert client.events == [
        ("deliver", DIRECT, "svc.echo", "", b"a", None, None, False),
        ("info", info),
        ("deliver", DIRECT, "svc.echo", "", b"b", None, None, False),
    ]


def ping_then_reset(client: Recorder) -> Any:
    async def handle() -> None:
        client.events.append(("ping",))
        client.nc._ps.reset()  # type: ignore[attr-defined]

    return handle


async def test_a_reset_while_a_message_is_handled_drops_the_rest_of_the_read() -> None:
    # nats-py resets its parser (a new, empty buffer) when the connection is lost, maybe
    # while the read loop awaits the handling of a message: what was read is void then.
    outcomes = []
    for reader in (False, True):
        client = Recorder(reader=reader)
        nc: Any = client.nc

        nc._process_ping = ping_then_reset(client)
        await client.feed([msg(DIRECT, b"a") + b"PING\r\n" + msg(DIRECT, b"b"), msg(DIRECT, b"c")])
        outcomes.append(client.outcome())
    assert outcomes[1] == outcomes[0]
    assert [e[4] for e in outcomes[0]["events"] if e[0] == "deliver"] == [b"a", b"c"]


def test_only_nats_pys_own_client_and_parser_are_taken_over() -> None:
    assert reads_directly(NATS())

    class Custom(NATS):
        async def _process_msg(self, *args: Any, **kwargs: Any) -> None:
            pass

    custom = Custom()
    assert not reads_directly(custom)
    assert not read_directly(custom)
    assert type(custom._ps) is Parser  # type: ignore[attr-defined]
