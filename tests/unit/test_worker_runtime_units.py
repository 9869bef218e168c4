"""What the worker works out once per operation (``execution.Unit``) is what it would
work out per request, and a request's fingerprint is its params' JSON dump."""

from __future__ import annotations

import uuid

from handlers import default_registry, idempotency
from hubbub.contracts.api import resources
from workers.execution import Unit, _dump


class TestUnit:
    def test_each_registered_operation_s_unit_matches_the_operation(self) -> None:
        for op, handler in default_registry():
            unit = Unit(op, handler)

            assert unit.writes is not op.reads_only, op.name
            assert unit.mutating is op.mutating, op.name
            assert unit.self_claiming is (handler in idempotency.SELF_CLAIMING), op.name
            assert unit.to_json == op.result_adapter.serializer.to_json, op.name


class TestFingerprint:
    def test_the_params_dump_is_their_json_mode_model_dump(self) -> None:
        params = resources.create.params.model_validate(
            {
                "workspace_id": str(uuid.uuid4()),
                "kind": "task",
                "title": "t",
                "tags": ["a", "b"],
                "data": {"x": 1, "nested": [1, {"y": None}]},
            }
        )

        assert _dump(params) == params.model_dump(mode="json")
        assert idempotency.request_fingerprint("resources.create", _dump(params)) == (
            idempotency.request_fingerprint("resources.create", params.model_dump(mode="json"))
        )
