"""The client side of RFC 6455 that the load client needs: the upgrade's accept key
and masked client frames (section 5.3). Server frames are parsed in place by
``protocol.py``."""

from __future__ import annotations

import base64
import hashlib
import os

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PONG = b'{"op":"pong"}'  # the answer to the application ping {"push":"ping"}


def accept_for(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``Sec-WebSocket-Key: key``."""
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def new_key() -> bytes:
    """A fresh ``Sec-WebSocket-Key``."""
    return base64.b64encode(os.urandom(16))


def _mask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


def encode_client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final, masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    return head + mask + _mask(payload, mask)
