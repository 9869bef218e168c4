"""Params that need no validation per call: only empty params of a model they validate
to, serialized ``{}`` — so skipping the validation changes no call's outcome; any other
params are validated (and refused by ``NoParams``, as by every other operation)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from hub import calls
from hubbub.contracts.api import default_catalog
from hubbub.contracts.operations import NoParams

SOME_PARAMS: list[dict[str, Any]] = [{"x": 1}, {"workspace_id": "w", "nested": {"a": [1]}}]


def test_no_params_takes_nothing_and_refuses_anything_else() -> None:
    assert calls.takes_nothing(NoParams)
    validated = NoParams.__pydantic_validator__.validate_python({})
    assert validated.__pydantic_serializer__.to_json(validated, exclude_unset=True) == b"{}"
    for params in SOME_PARAMS:
        with pytest.raises(ValidationError):
            NoParams.__pydantic_validator__.validate_python(params)


def test_every_catalog_operation_it_skips_validates_empty_params_to_empty() -> None:
    skipped = [op for op in default_catalog() if calls.takes_nothing(op.params)]
    assert any(op.name == "users.me" for op in skipped)
    for op in skipped:
        validated = calls.validate(op, {})
        assert validated.__pydantic_serializer__.to_json(validated, exclude_unset=True) == b"{}"


class WithField(BaseModel):
    x: int = 0


class Checked(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def refuse(cls, value: Any) -> Any:
        raise ValueError("never")


@pytest.mark.parametrize("model", [WithField, Checked])
def test_params_that_can_fail_or_carry_values_are_validated(model: type[BaseModel]) -> None:
    assert not calls.takes_nothing(model)
