"""The WebSocket protocol's constants, shared by the hub and the Python client.

``docs/protocol.md`` is the full contract; this module is its machine-readable core.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

SUBPROTOCOL = "hubbub.v1.json"


class Op(StrEnum):
    CONNECT = "connect"
    REFRESH = "refresh"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    RPC = "rpc"
    PUBLISH = "publish"
    PRESENCE = "presence"
    HISTORY = "history"
    PONG = "pong"


class Push(StrEnum):
    CONNECTED = "connected"  # the connect of the upgrade request (``Authorization``)
    SUBSCRIBED = "subscribed"  # one per channel the upgrade request named (``subscribe``)
    PUB = "pub"
    PRESENCE = "presence"  # {"joined": [...], "left": [...]}: one diff per channel per tick
    UNSUBSCRIBED = "unsubscribed"
    GAP = "gap"
    EXPIRING = "expiring"
    DISCONNECT = "disconnect"
    PING = "ping"


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # hub draining, or it lost a channel's publications: reconnect, recover
    MESSAGE_TOO_BIG = 1009  # a frame over the size limit (RFC 6455's own code)
    UNAUTHORIZED = 4001  # bad, missing or expired token: refresh it, then reconnect
    FORBIDDEN = 4003  # not allowed (e.g. deactivated): do not reconnect
    POLICY = 4008  # too many frames, too many protocol errors: reconnect with backoff
    SLOW_CONSUMER = 4009  # send buffer overflowed: reconnect and recover
    INTERNAL = 4500  # a bug in the hub: reconnect with backoff


RECONNECT = {
    CloseCode.NORMAL: False,
    CloseCode.GOING_AWAY: True,
    CloseCode.MESSAGE_TOO_BIG: True,
    CloseCode.UNAUTHORIZED: True,
    CloseCode.FORBIDDEN: False,
    CloseCode.POLICY: True,
    CloseCode.SLOW_CONSUMER: True,
    CloseCode.INTERNAL: True,
}
