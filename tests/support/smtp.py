"""A minimal SMTP server for tests: accepts every message and keeps it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message


@dataclass
class SmtpCatcher:
    messages: list[Message] = field(default_factory=list)
    port: int = 0
    fail_first: int = 0  # answer 451 to this many messages first (a flaky server)
    refuse_recipients: str | None = None  # e.g. "550 no such user": every RCPT refused
    _server: asyncio.Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Listen on a free port, or on the port it had (a server back after a stop)."""
        self._server = await asyncio.start_server(self._session, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 catcher ESMTP")
        try:
            while line := await reader.readline():
                verb = line.decode(errors="replace").strip().split(" ")[0].upper()
                if verb in ("EHLO", "HELO"):
                    say("250 catcher")
                elif verb == "RCPT" and self.refuse_recipients:
                    say(self.refuse_recipients)
                elif verb == "DATA":
                    say("354 go ahead")
                    await writer.drain()
                    data = await reader.readuntil(b"\r\n.\r\n")
                    if self.fail_first > 0:
                        self.fail_first -= 1
                        say("451 try again later")
                    else:
                        self.messages.append(message_from_bytes(data[:-5]))
                        self._arrived.set()
                        say("250 kept")
                elif verb == "QUIT":
                    say("221 bye")
                    await writer.drain()
                    break
                else:
                    say("250 ok")
                await writer.drain()
        finally:
            writer.close()
