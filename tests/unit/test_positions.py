"""Order keys (``handlers/resources/positions.py``) are the npm ``fractional-indexing``
package's: the cases below are what its ``generateKeyBetween`` (3.2.0) returned for the
same arguments; and the contract refuses what that package refuses as a key."""

from __future__ import annotations

import random
import re

import pytest
from pydantic import TypeAdapter, ValidationError

from handlers.resources.positions import after, key_between
from hubbub.contracts.api.resources import Position, ResourceCreate

# (a, b, generateKeyBetween(a, b)), from node with frontend/node_modules.
CASES = [
    (None, None, "a0"),
    ("a7", None, "a8"),
    ("ay", None, "az"),
    ("az", None, "b00"),
    ("bzy", None, "bzz"),
    (None, "a0", "Zz"),
    (None, "Zr", "Zq"),
    (None, "Yzt", "Yzs"),
    ("a04", "a05", "a04V"),
    ("a0l", "a0m", "a0lV"),
    ("a0scl", "a0sd", "a0sct"),
    ("a3W", "a3WV", "a3WG"),
    ("a2SG", "a2SGV", "a2SGG"),
    ("Zz4S", "Zz4V", "Zz4U"),
    ("ZwQX", "ZwQZ", "ZwQY"),
    ("ZzdV", "Zzdl", "Zzdd"),
    ("ZwO8", "ZwOG", "ZwOC"),
    ("Zz5JV", "Zz5K", "Zz5Jl"),
]


@pytest.mark.parametrize(("a", "b", "expected"), CASES)
def test_the_same_key_as_the_npm_package(a: str | None, b: str | None, expected: str) -> None:
    assert key_between(a, b) == expected


def test_keys_after_each_other_rise_in_byte_order() -> None:
    keys = [after(None)]
    for _ in range(5000):
        keys.append(after(keys[-1]))
    assert keys == sorted(keys, key=str.encode)
    assert len(set(keys)) == len(keys)


def test_between_is_between() -> None:
    a, b = "a0", "a1"
    for _ in range(50):
        middle = key_between(a, b)
        assert a < middle < b
        b = middle
    with pytest.raises(ValueError, match=">="):
        key_between("a1", "a1")


@pytest.mark.parametrize(
    "bad",
    ["", "a0!", "a 0", "é0", "a" + "V" * 64, "a00", "aV0", "b0", "0abc", "A" + "0" * 26],
)
def test_the_contract_refuses_what_is_not_an_order_key(bad: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Position).validate_python(bad)


@pytest.mark.parametrize("good", ["a0", "Zz", "a0V", "b00", "A" + "0" * 25 + "1", "z" + "z" * 26])
def test_the_contract_takes_order_keys(good: str) -> None:
    assert TypeAdapter(Position).validate_python(good) == good


def test_the_documented_pattern_is_the_rule_the_contract_applies() -> None:
    """The API documents state the rule as one pattern and a length: every key the
    contract takes matches it, and every key it refuses does not (so a client that follows
    the documents, schemathesis included, is never refused)."""
    adapter = TypeAdapter(Position)
    schema = adapter.json_schema()
    pattern, longest = re.compile(schema["pattern"]), schema["maxLength"]
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    rng = random.Random(14)
    keys = [k for _, _, k in CASES] + ["A" + "0" * 26, "A" + "0" * 26 + "1", "a" * 65]
    for _ in range(20_000):
        alphabet = digits if rng.random() < 0.5 else "0aZA1z"
        keys.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 66))))
    for key in keys:
        try:
            adapter.validate_python(key)
            taken = True
        except ValidationError:
            taken = False
        documented = bool(pattern.match(key)) and len(key) <= longest
        assert taken == documented, key


def test_a_create_may_leave_the_position_out_but_not_send_null() -> None:
    """The documents say a string (or nothing): a null is refused like any other type."""
    base = {"workspace_id": "00000000-0000-0000-0000-000000000001", "kind": "a", "title": "t"}
    assert ResourceCreate.model_validate(base).position is None
    with pytest.raises(ValidationError):
        ResourceCreate.model_validate({**base, "position": None})
