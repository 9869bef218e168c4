"""Building server frames as bytes, once.

A server-to-client WebSocket frame is unmasked, so the same bytes go to every socket: a
publication is encoded (JSON and frame header) once per hub, whatever the number of
subscribers. Channel names are validated (``[A-Za-z0-9_-:]``), so they are embedded
without escaping; publication data is JSON that was checked once on arrival.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

from hubbub.contracts.errors import HubbubError


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65_536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:123]
    return bytes((0x88, len(payload))) + payload


def push(kind: str, **fields: Any) -> bytes:
    return orjson.dumps({"push": kind, **fields})


def pub(channel: str, offset: int, data: bytes) -> bytes:
    return b'{"push":"pub","channel":"%s","offset":%d,"data":%s}' % (channel.encode(), offset, data)


def result(command_id: int, raw_result: bytes) -> bytes:
    return b'{"id":%d,"result":%s}' % (command_id, raw_result)


# An rpc's reply as a whole frame (header and payload), in one formatting operation:
# ``{"id":<id>,"result":<result>}`` is 17 bytes and the id's digits around the result.
_RESULT_FRAME_SHORT = b'\x81%c{"id":%d,"result":%b}'  # payload < 126 bytes
_RESULT_FRAME_MEDIUM = b'\x81\x7e%c%c{"id":%d,"result":%b}'  # < 64 KiB: 16-bit length


def result_frame(command_id: int, raw_result: bytes) -> bytes:
    """``text_frame(result(command_id, raw_result))``, built at once."""
    n = len(raw_result) + 17 + len(str(command_id))
    if n < 126:
        return _RESULT_FRAME_SHORT % (n, command_id, raw_result)
    if n < 65_536:
        return _RESULT_FRAME_MEDIUM % (n >> 8, n & 0xFF, command_id, raw_result)
    return text_frame(result(command_id, raw_result))


def result_obj(command_id: int, value: Any) -> bytes:
    return result(command_id, orjson.dumps(value))


def error(command_id: int | None, err: HubbubError) -> bytes:
    return orjson.dumps({"id": command_id, "error": err.to_dict()})


PING = text_frame(push("ping"))
