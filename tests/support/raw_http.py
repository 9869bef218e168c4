"""HTTP/1.1 requests written byte for byte, for what well-behaved clients never send.

aiohttp's client (and yarl) normalize what they send: a path starting ``//``, a header
with a byte that is not UTF-8. ``raw_request`` writes the request exactly as given and
reads the answer until the server closes the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
from multidict import CIMultiDict


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


async def raw_request(
    port: int,
    method: str,
    target: bytes,
    headers: dict[str, bytes] | None = None,
    body: bytes = b"",
    timeout: float = 10.0,
) -> RawResponse:
    """Send ``method target`` with ``headers`` (values as raw bytes) to 127.0.0.1:``port``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1:%d" % port]
        lines += [name.encode() + b": " + value for name, value in (headers or {}).items()]
        lines += [b"Content-Length: %d" % len(body), b"Connection: close"]
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed.add(name.strip(), value.strip())
    return RawResponse(int(status_line.split(" ")[1]), parsed, _unchunked(parsed, rest))


def _unchunked(headers: CIMultiDict[str], body: bytes) -> bytes:
    if headers.get("Transfer-Encoding", "").lower() != "chunked":
        return body
    out = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, body = out + body[:size], body[size + 2 :]
