"""Params that need no validation per call: only a model every params dict validates to,
serialized ``{}`` — so skipping the validation changes no call's outcome."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, model_validator

from hub import calls
from hubbub.contracts.api import default_catalog
from hubbub.contracts.operations import NoParams

SOME_PARAMS: list[dict[str, Any]] = [{}, {"x": 1}, {"workspace_id": "w", "nested": {"a": [1]}}]


def test_no_params_takes_nothing_and_every_dict_validates_to_empty() -> None:
    assert calls.takes_nothing(NoParams)
    for params in SOME_PARAMS:
        validated = NoParams.__pydantic_validator__.validate_python(params)
        assert validated.__pydantic_serializer__.to_json(validated, exclude_unset=True) == b"{}"


def test_every_catalog_operation_it_skips_would_have_validated_to_empty() -> None:
    skipped = [op for op in default_catalog() if calls.takes_nothing(op.params)]
    assert any(op.name == "users.me" for op in skipped)
    for op in skipped:
        for params in SOME_PARAMS:
            validated = calls.validate(op, params)
            assert validated.__pydantic_serializer__.to_json(validated, exclude_unset=True) == (
                b"{}"
            )


class Forbidding(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WithField(BaseModel):
    x: int = 0


class Checked(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def refuse(cls, value: Any) -> Any:
        raise ValueError("never")


@pytest.mark.parametrize("model", [Forbidding, WithField, Checked])
def test_params_that_can_fail_or_carry_values_are_validated(model: type[BaseModel]) -> None:
    assert not calls.takes_nothing(model)
