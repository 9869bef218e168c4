"""Parsing an ``rpc`` command: its own model's fast path gives the same command, and a
bad one the same ``validation_failed`` error, as the union of every command does."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hub.calls import invalid
from hub.ws import commands as cmd


def union_error(raw: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        cmd._adapter.validate_python(raw)
    return invalid(caught.value).to_dict()


def test_a_good_rpc_is_its_model() -> None:
    parsed = cmd.parse_command(
        {"op": "rpc", "id": 3, "method": "users.me", "params": {"a": 1}, "idempotency_key": "k"}
    )
    assert isinstance(parsed, cmd.Rpc)
    assert (parsed.id, parsed.method, parsed.params, parsed.idempotency_key) == (
        3,
        "users.me",
        {"a": 1},
        "k",
    )
    bare = cmd.parse_command({"op": "rpc", "id": 4, "method": "users.me"})
    assert isinstance(bare, cmd.Rpc)
    assert (bare.params, bare.idempotency_key) == ({}, None)


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "rpc", "id": 1, "method": "m" * 101},
        {"op": "rpc", "id": 1, "method": "users.me", "extra": True},
        {"op": "rpc", "id": 1, "method": "users.me", "params": [1]},
        {"op": "rpc", "id": 1},
        {"op": "rpc", "id": -1, "method": "users.me"},
        {"op": "rpc", "id": 1, "method": 5, "idempotency_key": 7},
    ],
)
def test_a_bad_rpc_fails_as_the_union_says(raw: dict[str, Any]) -> None:
    with pytest.raises(cmd.CommandError) as caught:
        cmd.parse_command(raw)
    assert caught.value.id == raw["id"]
    assert caught.value.error.to_dict() == union_error(raw)
    assert caught.value.error.code.value == "validation_failed"
