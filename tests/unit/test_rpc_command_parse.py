"""Parsing an ``rpc`` command: its fast path (``RpcCall``, no model built) gives the
same fields, and a bad one the same ``validation_failed`` error, as the union of every
command does."""

from __future__ import annotations

from typing import Any

import pytest

from hub.ws import commands as cmd
from tests.support.commands import union_error


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "rpc", "id": 3, "method": "users.me", "params": {"a": 1}, "idempotency_key": "k"},
        {"op": "rpc", "id": 4, "method": "users.me"},
        {"op": "rpc", "id": 0, "method": "", "params": {}, "idempotency_key": None},
        {"op": "rpc", "id": 2**53, "method": "m" * 100},
    ],
)
def test_a_good_rpc_has_the_fields_of_its_model(raw: dict[str, Any]) -> None:
    parsed = cmd.parse_command(raw)
    assert type(parsed) is cmd.RpcCall
    model = cmd._adapter.validate_python(raw)
    assert isinstance(model, cmd.Rpc)
    assert parsed == cmd.RpcCall.of(model)


def test_each_rpc_gets_params_of_its_own() -> None:
    first = cmd.parse_command({"op": "rpc", "id": 1, "method": "users.me"})
    second = cmd.parse_command({"op": "rpc", "id": 2, "method": "users.me"})
    assert isinstance(first, cmd.RpcCall)
    assert isinstance(second, cmd.RpcCall)
    first.params["x"] = 1
    assert second.params == {}


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "rpc", "id": 1, "method": "m" * 101},
        {"op": "rpc", "id": 1, "method": "users.me", "extra": True},
        {"op": "rpc", "id": 1, "method": "users.me", "params": [1]},
        {"op": "rpc", "id": 1},
        {"op": "rpc", "id": -1, "method": "users.me"},
        {"op": "rpc", "id": 1, "method": 5, "idempotency_key": 7},
        {"op": "rpc", "id": 1, "method": "users.me", "params": None},
        {"op": "rpc", "id": 1, "method": "users.me", "idempotency_key": ["k"]},
        {"op": "rpc", "id": 2**53 + 1, "method": "users.me"},
    ],
)
def test_a_bad_rpc_fails_as_the_union_says(raw: dict[str, Any]) -> None:
    with pytest.raises(cmd.CommandError) as caught:
        cmd.parse_command(raw)
    assert caught.value.id == raw["id"]
    assert caught.value.error.to_dict() == union_error(raw)
    assert caught.value.error.code.value == "validation_failed"
