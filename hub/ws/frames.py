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


def result_obj(command_id: int, value: Any) -> bytes:
    return result(command_id, orjson.dumps(value))


def error(command_id: int | None, err: HubbubError) -> bytes:
    return orjson.dumps({"id": command_id, "error": err.to_dict()})


PING = text_frame(push("ping"))
