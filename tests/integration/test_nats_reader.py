"""Clients connected by ``connect_nats`` read with hubbub.nats_reader's parser — against a
real NATS server: requests and their replies, no responders, JetStream's acks and pulls,
subscriptions with callbacks and limits, and a reconnect.

The first test fails when a nats-py release is not one the parser follows
(``nats_reader.VERSIONS``): its ``Client._process_msg`` then wants a review.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.protocol.parser import Parser

from hubbub.nats_reader import Reader
from hubbub.natsconn import connect_nats
from tests.support.services import ServiceUrls
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
async def client(services: ServiceUrls) -> AsyncIterator[NATS]:
    conn = await connect_nats(services.nats_url, "test-nats-reader")
    yield conn
    await conn.close()


def subject() -> str:
    return "reader." + secrets.token_hex(4)


async def echo_on(nc: NATS, to: str) -> None:
    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)

    await nc.subscribe(to, cb=echo)
    await nc.flush()


async def test_connect_nats_reads_with_the_reader(client: NATS) -> None:
    assert type(client._ps) is Reader  # type: ignore[attr-defined]


async def test_a_baseline_may_keep_nats_pys_own_parser(services: ServiceUrls) -> None:
    conn = await connect_nats(services.nats_url, "test-nats-reader-plain", plain_reader=True)
    try:
        assert type(conn._ps) is Parser  # type: ignore[attr-defined]
    finally:
        await conn.close()


async def test_requests_of_every_size_get_their_own_replies(client: NATS) -> None:
    to = subject()
    await echo_on(client, to)
    # From empty to several reads' worth (nats-py reads 32 KiB at a time), concurrently.
    sizes = [0, 1, 100, 4095, 4096, 32767, 32768, 100_000, 600_000] * 3 + list(range(300))
    payloads = [secrets.token_bytes(size) for size in sizes]
    before = client.stats["in_msgs"]
    replies = await asyncio.gather(*(client.request(to, p, timeout=10) for p in payloads))
    assert [reply.data for reply in replies] == payloads
    assert client.stats["in_msgs"] - before == 2 * len(payloads)  # requests and replies


async def test_headers_come_through_as_nats_py_reads_them(client: NATS) -> None:
    to = subject()

    async def answer(msg: Msg) -> None:
        await client.publish(msg.reply, b"re:" + msg.data, headers=msg.headers)

    await client.subscribe(to, cb=answer)
    reply = await client.request(to, b"hi", timeout=5, headers={"A": "1", "Trace-Id": "t-9"})
    assert reply.data == b"re:hi"
    assert reply.headers == {"A": "1", "Trace-Id": "t-9"}


async def test_a_request_no_one_listens_to_fails_at_once(client: NATS) -> None:
    with pytest.raises(NoRespondersError):
        await client.request(subject(), b"anyone?", timeout=5)
    with pytest.raises(NoRespondersError):  # an old-style request: the reply's future
        await client.request(subject(), b"anyone?", timeout=5, old_style=True)


async def test_an_old_style_request_gets_its_reply(client: NATS) -> None:
    to = subject()
    await echo_on(client, to)
    reply = await client.request(to, b"old", timeout=5, old_style=True)
    assert reply.data == b"old"


async def test_jetstream_acks_its_publishes_and_serves_pulls(client: NATS) -> None:
    js = client.jetstream()
    name = "READER" + secrets.token_hex(4).upper()
    to = subject()
    await js.add_stream(name=name, subjects=[to])
    try:
        acks = [await js.publish(to, b"m%d" % i) for i in range(20)]
        assert [ack.seq for ack in acks] == list(range(1, 21))
        assert {ack.stream for ack in acks} == {name}
        pull = await js.pull_subscribe(to, durable="reader")
        got = await pull.fetch(20, timeout=5)
        assert [m.data for m in got] == [b"m%d" % i for i in range(20)]
        assert [m.metadata.sequence.stream for m in got] == list(range(1, 21))
        for m in got:
            await m.ack()
        with pytest.raises(asyncio.TimeoutError):  # the server's 404/408 status replies
            await pull.fetch(1, timeout=0.5)
    finally:
        await js.delete_stream(name)


async def test_a_subscription_with_a_callback_gets_every_message_in_order(
    client: NATS, services: ServiceUrls
) -> None:
    to = subject()
    got: list[bytes] = []
    done = asyncio.Event()

    async def take(msg: Msg) -> None:
        got.append(msg.data)
        if len(got) == 500:
            done.set()

    await client.subscribe(to, cb=take)
    limited = await client.subscribe(to, max_msgs=3)
    await client.flush()
    publisher = await connect_nats(services.nats_url, "test-nats-reader-pub")
    try:
        for i in range(500):
            await publisher.publish(to, b"%d" % i)
        await publisher.flush()
    finally:
        await publisher.close()
    await asyncio.wait_for(done.wait(), 10)
    assert got == [b"%d" % i for i in range(500)]
    first = [(await limited.next_msg(timeout=5)).data for _ in range(3)]
    assert first == [b"0", b"1", b"2"]
    assert limited._id not in client._subs  # type: ignore[attr-defined]  # unsubscribed at its max


async def test_reading_goes_on_after_a_reconnect(services: ServiceUrls) -> None:
    proxy = TcpProxy.to_url(services.nats_url)
    await proxy.start()
    reconnected = asyncio.Event()

    async def on_reconnected() -> None:
        reconnected.set()

    conn = await connect_nats(
        proxy.url("nats"), "test-nats-reader-rc", on_reconnected=on_reconnected
    )
    try:
        to = subject()
        await echo_on(conn, to)
        assert (await conn.request(to, b"before", timeout=5)).data == b"before"
        await proxy.cut()
        await proxy.restore()
        await asyncio.wait_for(reconnected.wait(), 10)
        assert type(conn._ps) is Reader  # type: ignore[attr-defined]
        replies = await asyncio.gather(
            *(conn.request(to, b"after %d" % i, timeout=5) for i in range(50))
        )
        assert [r.data for r in replies] == [b"after %d" % i for i in range(50)]
    finally:
        await conn.close()
        await proxy.stop()
