"""The hub parses commands with its own models (hub/ws/commands.py); the AsyncAPI
document describes them from hubbub/contracts/frames.py. The two must say the same."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from hub.ws import commands as hub_commands
from hubbub.contracts import frames
from hubbub.contracts.protocol import Op, Push


def shape(model: type[BaseModel]) -> dict[str, Any]:
    """The schema without titles and descriptions: what a frame may hold."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if k not in ("title", "description") or not isinstance(v, str)
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return dict(strip(model.model_json_schema()))


@pytest.mark.parametrize("op", list(Op))
def test_each_command_model_is_the_hubs(op: Op) -> None:
    contract = frames.COMMANDS[op]
    hub_model = getattr(hub_commands, contract.__name__)
    assert shape(contract) == shape(hub_model)
    assert contract.model_config.get("extra") == hub_model.model_config.get("extra")


def test_every_push_and_every_command_has_a_model() -> None:
    assert set(frames.PUSHES) == set(Push)
    assert set(frames.COMMANDS) == set(Op)
    assert set(frames.RESULTS) == set(Op) - {Op.RPC, Op.PONG}


def test_the_expiring_push_is_written_with_in() -> None:
    push = frames.ExpiringPush.model_validate({"push": "expiring", "in": 30})
    assert push.model_dump(by_alias=True) == {"push": "expiring", "in": 30}
