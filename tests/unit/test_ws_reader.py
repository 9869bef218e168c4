"""``FrameQueue`` offers a text frame to the hub only while the read loop waits for one
with nothing queued; every other frame is queued as aiohttp queues it. ``Untouched``
refuses the swap once the stock parser may have read something."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMessage, WSMsgType, web
from aiohttp._websocket.reader import WebSocketReader

from hub.ws.reader import FrameQueue, Untouched


class Protocol:
    _reading_paused = False

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False


def text(data: str) -> WSMessage:
    return WSMessage(WSMsgType.TEXT, data, "")


class Hub:
    """A ``take`` that runs the frames it is told to and records all it is offered."""

    def __init__(self, runs: bool = True) -> None:
        self.runs = runs
        self.offered: list[str] = []

    def __call__(self, data: str) -> bool:
        self.offered.append(data)
        return self.runs


def make_queue(hub: Hub | None = None, *, idle: bool = True) -> FrameQueue:
    queue = FrameQueue(Protocol(), 2**16, loop=asyncio.get_running_loop())
    queue.take = hub
    queue.idle = idle
    return queue


async def test_a_text_frame_read_while_the_loop_waits_goes_to_the_hub() -> None:
    hub = Hub()
    queue = make_queue(hub)
    queue.feed_data(text("a"), 1)
    assert hub.offered == ["a"]
    assert not queue._buffer
    assert queue._size == 0


async def test_frames_read_while_the_loop_is_busy_are_queued() -> None:
    hub = Hub()
    queue = make_queue(hub, idle=False)
    queue.feed_data(text("a"), 1)
    assert hub.offered == []
    assert await queue.read() == text("a")


async def test_a_frame_behind_a_queued_one_is_queued_too() -> None:
    hub = Hub()
    queue = make_queue(hub)
    queue.feed_data(WSMessage(WSMsgType.PING, b"", ""), 0)
    queue.feed_data(text("a"), 1)
    assert hub.offered == []
    assert [(await queue.read()).type, await queue.read()] == [WSMsgType.PING, text("a")]


async def test_a_frame_the_hub_does_not_take_is_queued() -> None:
    hub = Hub(runs=False)
    queue = make_queue(hub)
    queue.feed_data(text("a"), 1)
    assert hub.offered == ["a"]
    assert await queue.read() == text("a")


async def test_nothing_is_offered_before_the_socket_is_connected_or_after_eof() -> None:
    queue = make_queue(None)
    queue.feed_data(text("connect"), 7)
    assert await queue.read() == text("connect")
    hub = Hub()
    queue = make_queue(hub)
    queue.feed_eof()
    queue.feed_data(text("a"), 1)
    assert hub.offered == []


async def test_the_parser_hands_each_frame_to_the_queue_it_was_made_with() -> None:
    """aiohttp's parser calls the queue's ``feed_data`` (overridable) for each frame."""
    hub = Hub()
    queue = make_queue(hub)
    parser = WebSocketReader(queue, 1024, compress=False, decode_text=True)
    frames = b"".join(bytes((0x81, 0x80 | len(p))) + b"\0\0\0\0" + p for p in (b"x", b"yz"))
    parser.feed_data(frames)
    assert hub.offered == ["x", "yz"]


async def test_a_socket_upgraded_without_a_turn_of_the_loop_is_swapped(
    aiohttp_client: Any,
) -> None:
    """Against the installed aiohttp: its queue and parser are what ``takes_frames``
    expects, and a text frame then reaches ``take``; an upgrade during which the loop
    turned (bytes may have reached the stock parser) keeps aiohttp's queue."""
    offered: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        untouched = Untouched(request)
        if "turn" in request.query:
            await asyncio.sleep(0)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        queue = untouched.take_frames(request, ws)
        if queue is not None:
            queue.take = lambda data: bool(offered.append(data)) or data == "taken"
        while True:
            if queue is not None:
                queue.idle = True
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT:
                break
            await ws.send_str(f"{type(queue).__name__}:{msg.data}")
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    async with client.ws_connect("/") as ws:
        await ws.send_str("taken")
        await ws.send_str("queued")
        assert await ws.receive_str() == "FrameQueue:queued"
    assert offered == ["taken", "queued"]
    async with client.ws_connect("/?turn=1") as ws:
        await ws.send_str("queued")
        assert await ws.receive_str() == "NoneType:queued"
    assert offered == ["taken", "queued"]
