"""The head of a WebSocket upgrade request read straight off a connection, and the ``101``
answering it (RFC 6455 §4.2), for upgrades served without aiohttp's request machinery
(``hub/serving.py``).

The parser is deliberately narrow: it takes only a plain, well-formed
``GET /ws[?query] HTTP/1.1`` upgrade whose head arrived whole, and says None to
anything else — an unusual byte, a header it would have to interpret (a body's length,
a folded line), a header aiohttp takes once given twice, a head over ``MAX_HEAD_BYTES``
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
# RFC 9110's token, for field names; a name with anything else around it (a space before
# the colon, a folded continuation line) is aiohttp's to answer.
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A field value: visible ASCII, spaces and tabs (no controls, no DEL).
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
# The request target's query: visible ASCII but '#' (a fragment is never sent).
_QUERY = re.compile(r"[\x21-\x22\x24-\x7e]*")
_PREFIX = b"GET /ws"
_SUFFIX = " HTTP/1.1"


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
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES)
    if end < 0:
        return None
    try:
        lines = data[:end].decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        return None
    request_line = lines[0]
    if not request_line.endswith(_SUFFIX):
        return None
    target = request_line[4 : -len(_SUFFIX)]
    path, _, query = target.partition("?")
    if path != "/ws" or not _QUERY.fullmatch(query):
        return None
    if len(lines) - 1 > MAX_HEADERS:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    seen: set[str] = set()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            return None
        lower = name.lower()
        if lower in seen and lower in SINGLETON_HEADERS:  # aiohttp answers 400
            return None
        seen.add(lower)
        headers.add(name, value.strip(" \t"))
    if not _is_upgrade(headers):
        return None
    key = headers["Sec-WebSocket-Key"]
    return UpgradeHead(query, headers, key, end + 4)


def _is_upgrade(headers: CIMultiDict[str]) -> bool:
    """A bodiless WebSocket version 13 upgrade, with one of each header that says so, one
    ``Host`` and a well-formed key."""
    if "Content-Length" in headers or "Transfer-Encoding" in headers:
        return False
    for name in ("Host", "Upgrade", "Connection", "Sec-WebSocket-Version", "Sec-WebSocket-Key"):
        if len(headers.getall(name, ())) != 1:
            return False
    if headers["Upgrade"].lower() != "websocket" or headers["Sec-WebSocket-Version"] != "13":
        return False
    if "upgrade" not in (token.strip().lower() for token in headers["Connection"].split(",")):
        return False
    try:
        return len(base64.b64decode(headers["Sec-WebSocket-Key"], validate=True)) == 16
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
