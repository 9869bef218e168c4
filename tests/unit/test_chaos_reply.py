"""The chaos suite's wait for a command's reply ends at its deadline, even while the
socket keeps sending other frames (pushes) faster than any read times out."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest

from chaos import scenarios
from tests.support.clock import Clock

PUSH = aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, '{"push": "ping"}', None)


class Chatty:
    """A socket that answers every read at once with a push, never with the reply; each
    read takes 0.25 s of the (fake) clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.reads = 0

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        self.reads += 1
        assert self.reads < 1000, "still reading long past the deadline"
        self.clock.advance(0.25)
        return PUSH


async def test_pushes_do_not_keep_the_wait_for_a_reply_going(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(scenarios, "time", SimpleNamespace(monotonic=clock))
    ws = Chatty(clock)
    with pytest.raises(TimeoutError, match="no reply to command 7 within 1s"):
        await scenarios._reply(cast(Any, ws), 7, timeout=1.0)
    assert ws.reads == 4  # 1 s of 0.25 s reads, then no more
