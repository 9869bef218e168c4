"""What a NATS server told one connection (nats-py's ``error_cb``): its permissions and
authorization violations, to wait for."""

from __future__ import annotations

import asyncio


class ServerErrors:
    """Pass ``record`` as a connection's ``error_cb``; ``await wait_for(text)`` returns
    once an error containing ``text`` (any case) has come, ``TimeoutError`` if none does
    within ``timeout``."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._changed = asyncio.Event()

    async def record(self, exc: Exception) -> None:
        self.seen.append(str(exc))
        self._changed.set()

    async def wait_for(self, text: str, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not any(text.lower() in seen.lower() for seen in self.seen):
                self._changed.clear()
                await self._changed.wait()
