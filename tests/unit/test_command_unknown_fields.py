"""An unknown field in a command is an error naming it (``validation_failed``), so a typo
does not pass silently; ``pong`` alone ignores what it does not know (it has no reply to
carry an error)."""

from __future__ import annotations

from typing import Any

import pytest

from hub.ws import commands as cmd

COMMANDS: list[dict[str, Any]] = [
    {"op": "connect", "id": 1, "token": "t"},
    {"op": "refresh", "id": 1, "token": "t"},
    {"op": "subscribe", "id": 1, "channel": "public:x"},
    {"op": "unsubscribe", "id": 1, "channel": "public:x"},
    {"op": "rpc", "id": 1, "method": "users.me"},
    {"op": "publish", "id": 1, "channel": "chat:x", "data": {}},
    {"op": "presence", "id": 1, "channel": "chat:x"},
    {"op": "history", "id": 1, "channel": "chat:x"},
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c["op"])
def test_an_unknown_field_is_validation_failed(command: dict[str, Any]) -> None:
    with pytest.raises(cmd.CommandError) as caught:
        cmd.parse_command({**command, "chanel": "public:typo"})
    assert (caught.value.id, caught.value.error.code.value) == (1, "validation_failed")
    assert "chanel" in str(caught.value.error.details)


def test_pong_ignores_unknown_fields() -> None:
    parsed = cmd.parse_command({"op": "pong", "id": 3, "chanel": "anything"})
    assert isinstance(parsed, cmd.Pong)
