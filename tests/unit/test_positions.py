"""Order keys (``handlers/resources/positions.py``) are the npm ``fractional-indexing``
package's: the cases below are what its ``generateKeyBetween`` (3.2.0) returned for the
same arguments; and the contract refuses what that package refuses as a key."""

from __future__ import annotations

import random
import re

import pytest
from pydantic import TypeAdapter, ValidationError

from handlers.resources.positions import (
    RESPACE_AFTER,
    SHORT_KEY,
    after,
    key_between,
    keys_between,
    respace,
)
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


# (a, b, n, generateNKeysBetween(a, b, n)), from node with frontend/node_modules.
N_CASES = [
    (None, None, 3, ["a0", "a1", "a2"]),
    ("a0", None, 3, ["a1", "a2", "a3"]),
    (None, "a0", 3, ["Zx", "Zy", "Zz"]),
    ("a0", "a1", 5, ["a08", "a0G", "a0V", "a0d", "a0l"]),
    ("a0", "a0V", 4, ["a04", "a08", "a0G", "a0O"]),
    ("Zz", "a0", 2, ["ZzG", "ZzV"]),
    ("a0", "b00", 7, ["a0G", "a0V", "a0l", "a1", "a1V", "a2", "a3"]),
    (None, "Zz", 1, ["Zy"]),
    ("a0VVU1", "a1", 3, ["a0d", "a0l", "a0t"]),
]


@pytest.mark.parametrize(("a", "b", "n", "expected"), N_CASES)
def test_n_keys_the_same_as_the_npm_package(
    a: str | None, b: str | None, n: int, expected: list[str]
) -> None:
    assert keys_between(a, b, n) == expected


def apply(below: list[str], moved: str, above: list[str], span: int = 50) -> list[str] | None:
    """The column (``below`` nearest first) after ``respace``, in order."""
    plan = respace(below, moved, above, span)
    if plan is None:
        return None
    n_below, n_above, keys = plan
    return [*reversed(below[n_below:]), *keys, *above[n_above:]]


class TestRespace:
    def test_the_run_of_long_keys_around_the_move_is_spread_between_short_ones(self) -> None:
        long = "a0" + "V" * 40
        below = ["a0" + "V" * 39 + "G", "a0", "Zz"]
        plan = respace(below, long, [long + "1", "a1", "a2"])
        assert plan == (1, 1, keys_between("a0", "a1", 3))
        column = apply(below, long, [long + "1", "a1", "a2"])
        assert column == ["Zz", "a0", *keys_between("a0", "a1", 3), "a1", "a2"]
        assert column == sorted(column)
        assert max(map(len, column)) <= SHORT_KEY

    def test_a_lone_long_key_between_short_ones_gets_the_key_between_them(self) -> None:
        assert respace(["a0"], "a0" + "V" * 40, ["a1"]) == (0, 0, ["a0V"])

    def test_a_run_to_the_end_stays_below_the_key_a_create_would_take_after_it(self) -> None:
        """A create without position that read the old last key goes to the key after it:
        the run's new keys stay below that, so the create still lands after the run."""
        long = "a0" + "V" * 40
        column = apply(["a0"], long, [long + "1"])
        assert column is not None
        assert column[0] == "a0"
        assert all("a0" < key < key_between(long + "1", None) for key in column[1:])
        assert apply([], long, []) == [keys_between(None, key_between(long, None), 1)[0]]

    def test_equal_long_keys_get_keys_of_their_own(self) -> None:
        long = "a0" + "V" * 40
        column = apply([long, "a0"], long, [long])
        assert column is not None
        assert len(set(column)) == len(column) == 4
        assert column == sorted(column)

    def test_at_most_span_cards_either_side_are_re_keyed(self) -> None:
        """Past ``span`` long keys the run stops at the next card's key: it keeps its key,
        and the new keys go between the two bounds, short because the bounds differ
        early."""
        below = ["a0" + "1" * 20 + f"{n:02d}" for n in range(99, 0, -1)] + ["a0"]
        above = ["a0" + "z" * 20 + f"{n:02d}" for n in range(10, 99)] + ["a1"]
        moved = "a0" + "V" * 40
        plan = respace(below[:6], moved, above[:6], span=5)
        assert plan is not None
        n_below, n_above, keys = plan
        assert (n_below, n_above) == (5, 5)
        assert keys == keys_between(below[5], above[5], 11)
        assert max(map(len, keys)) <= RESPACE_AFTER

    def test_bounds_that_leave_no_short_keys_re_key_nothing(self) -> None:
        prefix = "a0" + "V" * 40
        below = [prefix + "1" + str(n) for n in range(9, 2, -1)]
        above = [prefix + "5" + str(n) for n in range(1, 8)]
        assert respace(below, prefix + "3", above, span=3) is None
        tied = "a0" + "V" * 40
        assert respace([tied] * 4, tied, [tied] * 4, span=3) is None

    def test_a_gap_dropped_into_again_and_again_stays_short(self) -> None:
        """The browser's moves into one gap, respaced whenever a key gets long: no key
        ever needs more than RESPACE_AFTER + 1 characters (the API takes 64)."""
        column = ["a0", "a1", "a2", "a3"]
        for _ in range(2000):
            key = key_between(column[1], column[2])
            assert len(key) <= RESPACE_AFTER + 1
            column = [column[1], key, *column[2:]]
            if len(key) > RESPACE_AFTER:
                renewed = apply(column[:1][::-1], key, column[2:])
                assert renewed is not None
                column = renewed
            assert column == sorted(column)
            assert len(set(column)) == len(column)
