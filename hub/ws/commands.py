"""Client commands — one model per ``op``, from ``hubbub/contracts/frames.py`` (which the
AsyncAPI document describes too) — and the parsing of a text frame.

A frame holds one JSON object, or an array of them (a batch, handled in order). Every
command but ``pong`` carries an integer ``id`` that its reply echoes. What cannot be
parsed gets an error frame: ``bad_request`` (not JSON, no id, unknown op — with
``id: null`` when there is no usable id) or ``validation_failed`` (wrong fields).
"""

from __future__ import annotations

from typing import Annotated, Any

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
    "History",
    "Pong",
    "Presence",
    "Publish",
    "Refresh",
    "Rpc",
    "Since",
    "Subscribe",
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
_rpc = Rpc.__pydantic_validator__


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


def parse_command(raw: Any) -> Command:
    """One command object → its model; raises CommandError naming what is wrong."""
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
    if op == _RPC:
        # The most frequent command, validated by its own model: the union's
        # discriminator dispatch costs as much again. What fails here is validated
        # again below, for the union's error (the same locations either way).
        try:
            rpc: Rpc = _rpc.validate_python(raw)
            return rpc
        except ValidationError:
            pass
    try:
        return _adapter.validate_python(raw)
    except ValidationError as exc:
        raise CommandError(command_id, invalid(exc)) from None
