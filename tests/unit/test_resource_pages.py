"""A page of resources ends before its JSON passes MAX_PAGE_BYTES — exactly where
measuring every item would end it — while an item far from that budget is counted by a
bound, not serialized once more only to be measured."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from handlers.resources import listing
from handlers.resources.listing import (
    DATA_GROWTH,
    LARGEST_ITEM_BYTES,
    LARGEST_REPLY_BYTES,
    share,
    share_bound,
    to_page,
)
from handlers.resources.models import Resource
from hubbub.contracts.api.resources import (
    MAX_DATA_BYTES,
    MAX_PAGE_BYTES,
    ResourceCreate,
    ResourceListParams,
    ResourcePublic,
)

# What JSON escapes (quotes, backslashes, control characters), what it writes as is in
# one to four bytes, and what a mail client would show as a lookalike.
ALPHABET = '"\\\x00\x01\x1f\x7f\n\t aZ~é€\u2028\U0001f600'


def _text(rng: random.Random, most: int) -> str:
    length = rng.randint(0, most)
    if length > 256:  # a long one: a random stretch, repeated
        return (_text(rng, 256) + rng.choice(ALPHABET)) * (length // 257 + 1)
    return "".join(rng.choice(ALPHABET) for _ in range(length))


def _json(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "float", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return _text(rng, 20)
    if kind == "int":
        return rng.choice([0, -1, 2**63 - 1, -(2**63), rng.randint(-(10**12), 10**12)])
    if kind == "float":
        return rng.choice([0.1, 1e16, 1e-7, -0.0, 100000.0, 5e-324, 1.7976931348623157e308])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_text(rng, 8): _json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _row(rng: random.Random, *, body: int = 300) -> Resource:
    zone = rng.choice([UTC, timezone(timedelta(hours=-9, minutes=-30)), UTC])
    when = datetime(2024, 5, 6, 7, 8, 9, rng.choice([0, 1, 999_999]), tzinfo=zone)
    return Resource(
        id=uuid.UUID(int=rng.getrandbits(128)),
        workspace_id=uuid.UUID(int=0),
        kind=_text(rng, 32),
        title=_text(rng, 200),
        body=_text(rng, body),
        status=_text(rng, 32),
        position="a" + _text(rng, 63),
        tags=[_text(rng, 40) for _ in range(rng.randint(0, 20))],
        data={_text(rng, 8): _json(rng) for _ in range(rng.randint(0, 5))},
        version=rng.choice([1, 2**31 - 1, -(2**31)]),
        created_by=rng.choice([None, uuid.uuid4()]),
        updated_by=rng.choice([None, uuid.uuid4()]),
        created_at=when,
        updated_at=when,
        deleted_at=rng.choice([None, when]),
    )


def _public(row: Resource) -> ResourcePublic:
    return listing.resource_public(row)


def test_the_bound_of_an_item_is_never_below_its_json() -> None:
    rng = random.Random(20240506)
    for _ in range(3000):
        item = _public(_row(rng))
        bound = share_bound(item)
        assert bound is not None
        assert bound >= share(item), item


def test_data_orjson_cannot_write_is_measured() -> None:
    item = _public(_row(random.Random(1)))
    big = item.model_copy(update={"data": {"n": 2**70}})
    assert share_bound(big) is None


def _exact_page(rows: list[Resource], limit: int) -> list[uuid.UUID]:
    """Where a page ends when every item is measured."""
    size, kept = listing._PAGE_OVERHEAD, []
    for row in rows[:limit]:
        size += share(_public(row))
        if size > MAX_PAGE_BYTES and kept:
            break
        kept.append(row.id)
    return kept


@pytest.mark.parametrize("seed", range(12))
def test_a_page_ends_where_measuring_every_item_would_end_it(seed: int) -> None:
    rng = random.Random(seed)
    # Bodies from none to the largest: some pages end early, some hold `limit` items.
    rows = [_row(rng, body=rng.choice([0, 2_000, 30_000, 100_000])) for _ in range(101)]
    params = ResourceListParams(workspace_id=uuid.UUID(int=0), limit=100)
    page = to_page(params, rows)
    assert [item.id for item in page.items] == _exact_page(rows, 100)
    assert len(page.model_dump_json()) <= max(MAX_PAGE_BYTES, share(page.items[0]) + 2048)
    assert (page.next_cursor is None) == (len(page.items) == len(rows))


def test_a_page_far_from_the_budget_serializes_none_of_its_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measured: list[ResourcePublic] = []
    serialize = listing._item_json

    def counting(item: ResourcePublic, **kwargs: Any) -> bytes:
        measured.append(item)
        return serialize(item, **kwargs)

    monkeypatch.setattr(listing, "_item_json", counting)
    rng = random.Random(7)
    rows = [_row(rng) for _ in range(101)]
    page = to_page(ResourceListParams(workspace_id=uuid.UUID(int=0), limit=100), rows)
    assert len(page.items) == 100
    assert measured == []


def test_near_the_budget_each_item_is_measured_at_most_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measured: list[uuid.UUID] = []
    serialize = listing._item_json

    def counting(item: ResourcePublic, **kwargs: Any) -> bytes:
        measured.append(item.id)
        return serialize(item, **kwargs)

    monkeypatch.setattr(listing, "_item_json", counting)
    rng = random.Random(8)
    rows = [_row(rng, body=100_000) for _ in range(30)]
    page = to_page(ResourceListParams(workspace_id=uuid.UUID(int=0), limit=30), rows)
    assert 1 < len(page.items) < 30
    assert len(measured) == len(set(measured))


def test_the_largest_resource_the_contract_allows_is_within_its_bound() -> None:
    """Every text field at the longest ResourceCreate takes (one more character is
    refused), body characters at their most JSON bytes, data at its most: its JSON is
    within LARGEST_ITEM_BYTES, and so a page of it within LARGEST_REPLY_BYTES."""
    longest = {
        "workspace_id": uuid.UUID(int=0),
        "kind": "k" * 32,
        "title": "é" * 200,
        "body": "\x01" * 100_000,
        "status": "s" * 32,
        "position": "a" + "z" * 63,
        "tags": [f"{n:02}" + "t" * 38 for n in range(20)],
        "data": {"d": "\x01" * ((MAX_DATA_BYTES - 8) // 6)},
    }
    create = ResourceCreate.model_validate(longest)
    tags = longest["tags"]
    assert isinstance(tags, list)
    longer: dict[str, Any] = {
        "kind": "k" * 33,
        "title": "é" * 201,
        "body": "\x01" * 100_001,
        "status": "s" * 33,
        "position": "a" + "z" * 64,
        "tags": [*tags, "another"],
    }
    for field, value in [*longer.items(), ("tags", [*tags[:-1], tags[-1] + "x"])]:
        with pytest.raises(ValueError, match="validation error"):
            ResourceCreate.model_validate({**longest, field: value})
    now = datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    item = ResourcePublic(
        **create.model_dump(exclude={"workspace_id"}),
        id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        version=-(2**63),
        created_by=uuid.uuid4(),
        updated_by=uuid.uuid4(),
        created_at=now,
        updated_at=now,
        deleted_at=now,
    )
    assert share(item) <= LARGEST_ITEM_BYTES
    # Its data as read back at its densest (numbers jsonb writes out in full): still
    # within, and not far off.
    dense = orjson.loads(orjson.dumps({"a": [1e19] * 5459}).replace(b"1e+19", b"1" + b"0" * 19))
    item = item.model_copy(update={"data": dense})
    assert LARGEST_ITEM_BYTES * 0.95 < share(item) <= LARGEST_ITEM_BYTES
    assert LARGEST_REPLY_BYTES < 1024 * 1024  # NATS's default max_payload takes it


def test_data_read_back_grows_at_most_data_growth_times() -> None:
    """jsonb keeps numbers as exact decimals: ``1e19`` comes back as a 20-digit integer.
    The densest such data is within ``DATA_GROWTH`` times what it was accepted as."""
    accepted = orjson.dumps({"a": [1e19] * 5459})
    read_back = orjson.dumps(orjson.loads(accepted.replace(b"1e+19", b"1" + b"0" * 19)))
    assert len(accepted) <= MAX_DATA_BYTES < len(read_back) <= DATA_GROWTH * len(accepted)
