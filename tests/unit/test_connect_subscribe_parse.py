"""Parsing ``connect`` and ``subscribe`` commands, which every socket sends: their fast
path (``ConnectCall``, ``SubscribeCall``: no model built) gives the fields the union of
every command would, and what the fast path does not take gets the union's model or its
very error."""

from __future__ import annotations

from typing import Any

import pytest

from hub.ws import commands as cmd
from tests.support.commands import union_error


def fields(parsed: Any) -> tuple[Any, ...]:
    """What a handler reads of a parsed connect or subscribe, whichever form it has."""
    if isinstance(parsed, cmd.Connect | cmd.ConnectCall):
        return ("connect", parsed.id, parsed.token)
    assert isinstance(parsed, cmd.Subscribe | cmd.SubscribeCall)
    return ("subscribe", parsed.id, parsed.channel, parsed.since)


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "connect", "id": 1, "token": "t"},
        {"op": "connect", "id": 0, "token": "t" * 4096},
        {"op": "connect", "id": 2**53, "token": "eyJ.a.b"},
        {"id": 7, "token": "é" * 4096, "op": "connect"},  # characters, not bytes, count
    ],
)
def test_a_plain_connect_takes_the_fast_path(raw: dict[str, Any]) -> None:
    parsed = cmd.parse_command(raw)
    assert type(parsed) is cmd.ConnectCall
    model = cmd._adapter.validate_python(raw)
    assert isinstance(model, cmd.Connect)
    assert parsed == cmd.ConnectCall.of(model)


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "subscribe", "id": 2, "channel": "public:bench-idle"},
        {"op": "subscribe", "id": 0, "channel": ""},  # Channel.parse refuses it later
        {"op": "subscribe", "id": 2**53, "channel": "c" * 200},
        {"op": "subscribe", "id": 3, "channel": "user:u1", "since": None},
    ],
)
def test_a_first_subscribe_takes_the_fast_path(raw: dict[str, Any]) -> None:
    parsed = cmd.parse_command(raw)
    assert type(parsed) is cmd.SubscribeCall
    model = cmd._adapter.validate_python(raw)
    assert isinstance(model, cmd.Subscribe)
    assert fields(parsed) == fields(model)


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "subscribe", "id": 2, "channel": "public:x", "since": {"offset": 3, "epoch": "e"}},
        {"op": "subscribe", "id": 2, "channel": "public:x", "since": {"offset": 0, "epoch": ""}},
    ],
)
def test_a_resubscribe_is_the_unions_model(raw: dict[str, Any]) -> None:
    parsed = cmd.parse_command(raw)
    assert type(parsed) is cmd.Subscribe
    assert parsed == cmd._adapter.validate_python(raw)


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "connect", "id": 1, "token": ""},
        {"op": "connect", "id": 1, "token": "t" * 4097},
        {"op": "connect", "id": 1},
        {"op": "connect", "id": 1, "token": None},
        {"op": "connect", "id": 1, "token": 5},
        {"op": "connect", "id": 1, "token": "t", "extra": True},
        {"op": "connect", "id": -1, "token": "t"},
        {"op": "connect", "id": 2**53 + 1, "token": "t"},
        {"op": "subscribe", "id": 2, "channel": "c" * 201},
        {"op": "subscribe", "id": 2},
        {"op": "subscribe", "id": 2, "channel": None},
        {"op": "subscribe", "id": 2, "channel": ["public:x"]},
        {"op": "subscribe", "id": 2, "channel": "public:x", "since": 5},
        {"op": "subscribe", "id": 2, "channel": "public:x", "token": "t"},
        {"op": "subscribe", "id": -2, "channel": "public:x"},
    ],
)
def test_a_bad_connect_or_subscribe_fails_as_the_union_says(raw: dict[str, Any]) -> None:
    with pytest.raises(cmd.CommandError) as caught:
        cmd.parse_command(raw)
    assert caught.value.id == raw["id"]
    assert caught.value.error.to_dict() == union_error(raw)
    assert caught.value.error.code.value == "validation_failed"


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "connect", "id": True, "token": "t"},
        {"op": "subscribe", "token": "t", "channel": "public:x"},
        {"op": "connect", "id": None, "token": "t"},
        {"op": "connect", "id": 1.0, "token": "t"},
        {"op": "subscribe", "id": "4", "channel": "public:x"},
    ],
)
def test_a_command_without_an_integer_id_is_a_bad_request(raw: dict[str, Any]) -> None:
    with pytest.raises(cmd.CommandError) as caught:
        cmd.parse_command(raw)
    assert caught.value.id is None
    assert caught.value.error.code.value == "bad_request"
