"""The protocol's frames in the contracts: one model per command, result and push, and
the hub parses commands with those very models."""

from __future__ import annotations

import pytest

from hub.ws import commands as hub_commands
from hubbub.contracts import frames
from hubbub.contracts.protocol import Op, Push


@pytest.mark.parametrize("op", list(Op))
def test_the_hub_parses_each_command_with_the_contract_model(op: Op) -> None:
    assert getattr(hub_commands, frames.COMMANDS[op].__name__) is frames.COMMANDS[op]


def test_every_push_and_every_command_has_a_model() -> None:
    assert set(frames.PUSHES) == set(Push)
    assert set(frames.COMMANDS) == set(Op)
    assert set(frames.RESULTS) == set(Op) - {Op.RPC, Op.PONG}


def test_the_expiring_push_is_written_with_in() -> None:
    push = frames.ExpiringPush.model_validate({"push": "expiring", "in": 30})
    assert push.model_dump(by_alias=True) == {"push": "expiring", "in": 30}
