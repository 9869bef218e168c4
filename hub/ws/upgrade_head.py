"""The head of a WebSocket upgrade request read straight off a connection, and the ``101``
answering it (RFC 6455 §4.2), for upgrades served without aiohttp's request machinery
(``hub/serving.py``).

The parser is deliberately narrow: it takes only a plain, well-formed
``GET /ws[?query] HTTP/1.1`` upgrade whose head arrived whole, and says None to
anything else — an unusual byte, a header it would have to interpret (a body's length,
a folded line, an ``Expect``), a header aiohttp takes once given twice, a head over
``MAX_HEAD_BYTES``
— which then goes to aiohttp's own HTTP parser, as every other request does. What it
takes, aiohttp takes too, and reads as the same bodiless request: what is doubtful is
not its to decide.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from aiohttp.http_parser import SINGLETON_HEADERS
from multidict import CIMultiDict

# A head longer than this goes to aiohttp (its limits are larger, and it answers past
# them): an upgrade's head is a few hundred bytes, a token and a few cookies included.
MAX_HEAD_BYTES = 8 * 1024
MAX_HEADERS = 64  # as the hub configures aiohttp (hub/app.py)

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# The whole head in one pass: the request line (the query: visible ASCII but '#', a
# fragment is never sent), then at most ``MAX_HEADERS`` fields, each a name of RFC 9110's
# token characters right before its colon (a space before it, a folded line: not taken)
# and a value of visible ASCII, spaces and tabs (no controls, no DEL).
_HEAD = re.compile(
    rb"GET /ws(?:\?([!\x22\x24-\x7e]*+))? HTTP/1\.1\r\n"
    rb"((?:[!#$%&'*+\-.^_`|~0-9A-Za-z]++:[\t\x20-\x7e]*+\r\n){0,"
    + str(MAX_HEADERS).encode()
    + rb"})\r\n"
)
_PREFIX = b"GET /ws"
# Headers given more than once that make the head aiohttp's: those aiohttp takes once
# (it answers 400), and those that make it an upgrade.
_ONCE = SINGLETON_HEADERS | {"upgrade", "connection", "sec-websocket-version", "sec-websocket-key"}


@dataclass(frozen=True, slots=True)
class UpgradeHead:
    """A WebSocket upgrade request's head: its raw query string (not decoded), its headers,
    and how many bytes of the read it took (what follows is the client's first frames)."""

    query_string: str
    headers: CIMultiDict[str]
    key: str
    length: int

    @property
    def host(self) -> str:
        return self.headers["Host"]


def parse_upgrade_head(data: bytes) -> UpgradeHead | None:
    """The head at the start of ``data`` if it is a plain WebSocket upgrade of ``/ws``
    that arrived whole; None for anything else (aiohttp's to parse and answer)."""
    if not data.startswith(_PREFIX):
        return None
    match = _HEAD.match(data, 0, MAX_HEAD_BYTES)
    if match is None:
        return None
    pairs: list[tuple[str, str]] = []
    first: dict[str, str] = {}  # by lower-case name
    for line in match[2].decode("ascii").split("\r\n")[:-1]:
        name, _, value = line.partition(":")
        value = value.strip(" \t")
        pairs.append((name, value))
        lower = name.lower()
        if lower not in first:
            first[lower] = value
        elif lower in _ONCE:
            return None
    key = first.get("sec-websocket-key")
    if key is None or not _is_upgrade(first):
        return None
    query = match[1]
    return UpgradeHead(query.decode("ascii") if query else "", CIMultiDict(pairs), key, match.end())


def _is_upgrade(first: dict[str, str]) -> bool:
    """A bodiless WebSocket version 13 upgrade with a ``Host`` and a well-formed key, and
    no ``Expect`` (aiohttp answers one before any route: 417, or 100 Continue)."""
    if "content-length" in first or "transfer-encoding" in first or "host" not in first:
        return False
    if "expect" in first:
        return False
    if first.get("upgrade", "").lower() != "websocket":
        return False
    if first.get("sec-websocket-version") != "13":
        return False
    connection = first.get("connection", "")
    if "upgrade" not in (token.strip().lower() for token in connection.split(",")):
        return False
    try:
        return len(base64.b64decode(first["sec-websocket-key"], validate=True)) == 16
    except binascii.Error:
        return False


def switching_protocols(key: str, subprotocol: str) -> bytes:
    """The ``101`` accepting the upgrade whose key is ``key``, with ``subprotocol``."""
    digest = hashlib.sha1(key.encode() + _WS_GUID, usedforsecurity=False).digest()  # RFC 6455
    accept = base64.b64encode(digest)
    return (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n"
        b"Sec-WebSocket-Protocol: " + subprotocol.encode() + b"\r\n\r\n"
    )
