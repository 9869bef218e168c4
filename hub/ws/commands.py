"""Client commands — one model per ``op``, from ``hubbub/contracts/frames.py`` (which the
AsyncAPI document describes too) — and the parsing of a text frame.

A frame holds one JSON object, or an array of them (a batch, handled in order). Every
command but ``pong`` carries an integer ``id`` that its reply echoes. What cannot be
parsed gets an error frame: ``bad_request`` (not JSON, no id, unknown op — with
``id: null`` when there is no usable id) or ``validation_failed`` (wrong fields).
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from hub.calls import invalid
from hubbub.contracts.errors import BadRequest, HubbubError
from hubbub.contracts.frames import (
    Connect,
    History,
    Pong,
    Presence,
    Publish,
    Refresh,
    Rpc,
    Since,
    Subscribe,
    Unsubscribe,
)
from hubbub.contracts.protocol import Op

__all__ = [
    "Command",
    "CommandError",
    "Connect",
    "ConnectCall",
    "History",
    "Pong",
    "Presence",
    "Publish",
    "Refresh",
    "Rpc",
    "RpcCall",
    "Since",
    "Subscribe",
    "SubscribeCall",
    "Unsubscribe",
]

MAX_BATCH = 100


Command = Annotated[
    Connect | Refresh | Subscribe | Unsubscribe | Rpc | Publish | Presence | History | Pong,
    Field(discriminator="op"),
]
_adapter: TypeAdapter[Command] = TypeAdapter(Command)
_OPS = frozenset(op.value for op in Op)
_RPC = Op.RPC.value
_RPC_FIELDS = frozenset(Rpc.model_fields)
_CONNECT = Op.CONNECT.value
_CONNECT_FIELDS = frozenset(Connect.model_fields)
_SUBSCRIBE = Op.SUBSCRIBE.value
_SUBSCRIBE_FIELDS = frozenset(Subscribe.model_fields)
_NO_PARAMS: dict[str, Any] = {}  # a marker: never handed out
_MAX_METHOD = 100  # Rpc.method's max_length
_MAX_TOKEN = 4096  # Connect.token's max_length (its min_length: 1)
_MAX_CHANNEL = 200  # Subscribe.channel's max_length
_MAX_ID = 2**53  # CommandId's bound


class RpcCall(NamedTuple):
    """An ``rpc`` command as the socket runs it: what ``Rpc`` holds, with no model."""

    id: int
    method: str
    params: dict[str, Any]
    idempotency_key: str | None

    @classmethod
    def of(cls, command: Rpc) -> RpcCall:
        return cls(command.id, command.method, command.params, command.idempotency_key)


class ConnectCall(NamedTuple):
    """A ``connect`` command as the handshake runs it: what ``Connect`` holds, with no
    model."""

    id: int
    token: str

    @classmethod
    def of(cls, command: Connect) -> ConnectCall:
        return cls(command.id, command.token)


class SubscribeCall(NamedTuple):
    """A ``subscribe`` command with no ``since`` (a first subscribe, what a connecting
    socket sends): what ``Subscribe`` holds, with no model. ``id`` None: a channel the
    upgrade request named, answered with a ``subscribed`` push."""

    id: int | None
    channel: str
    since: Since | None = None


class CommandError(Exception):
    """A command that cannot be run; ``id`` is echoed when the frame had a usable one."""

    def __init__(self, command_id: int | None, error: HubbubError) -> None:
        super().__init__(error.message)
        self.id = command_id
        self.error = error


def split_frame(text: str | bytes) -> list[Any]:
    """The frame's command objects (not yet validated); raises CommandError."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CommandError(None, BadRequest(f"the frame is not valid JSON: {exc.msg}")) from None
    if isinstance(value, list):
        if not value:
            raise CommandError(None, BadRequest("an empty batch"))
        if len(value) > MAX_BATCH:
            raise CommandError(None, BadRequest(f"a batch holds at most {MAX_BATCH} commands"))
        return value
    return [value]


Parsed = Command | RpcCall | ConnectCall | SubscribeCall


def parse_command(raw: Any) -> Parsed:
    """One command object → its model, or for the commands every socket sends, the same
    fields with no model built (an ``rpc``: ``RpcCall``; ``connect``: ``ConnectCall``; a
    ``subscribe`` with no ``since``: ``SubscribeCall``); raises CommandError naming
    what is wrong."""
    if type(raw) is dict:
        # A command that plainly has its model's shape skips the model. Anything else
        # takes the general path below, for its error (or for the model it may still be).
        op = raw.get("op")
        command_id = raw.get("id")
        if type(command_id) is int and 0 <= command_id <= _MAX_ID:  # an int, not a bool
            if op == _RPC:  # the most frequent command
                method = raw.get("method")
                params = raw.get("params", _NO_PARAMS)
                key = raw.get("idempotency_key")
                if (
                    type(method) is str
                    and len(method) <= _MAX_METHOD
                    and type(params) is dict
                    and (key is None or type(key) is str)
                    and raw.keys() <= _RPC_FIELDS
                ):
                    return RpcCall(command_id, method, {} if params is _NO_PARAMS else params, key)
            elif op == _CONNECT:
                token = raw.get("token")
                if (
                    type(token) is str
                    and 0 < len(token) <= _MAX_TOKEN
                    and raw.keys() <= _CONNECT_FIELDS
                ):
                    return ConnectCall(command_id, token)
            elif op == _SUBSCRIBE:
                channel = raw.get("channel")
                if (
                    type(channel) is str
                    and len(channel) <= _MAX_CHANNEL
                    and raw.get("since") is None
                    and raw.keys() <= _SUBSCRIBE_FIELDS
                ):
                    return SubscribeCall(command_id, channel)
    if not isinstance(raw, dict):
        raise CommandError(None, BadRequest("a command is a JSON object"))
    raw_id = raw.get("id")
    command_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
    op = raw.get("op")
    if op != Op.PONG:
        if command_id is None:
            raise CommandError(None, BadRequest("every command needs an integer id"))
        if not isinstance(op, str) or op not in _OPS:
            raise CommandError(command_id, BadRequest(f"unknown op {op!r}", ops=sorted(_OPS)))
    try:
        return _adapter.validate_python(raw)
    except ValidationError as exc:
        raise CommandError(command_id, invalid(exc)) from None
