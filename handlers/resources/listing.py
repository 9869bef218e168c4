"""``resources.list``: filters, full-text search, sort either way, keyset pages.

The default order is the board's: ``(position, id)`` ascending (byte order of the order
key, ties by id), whatever the filters. The order is always ``(<sort column>, id)`` in
one direction, and the next page starts strictly after the last row's key: rows inserted
meanwhile land before or after the cursor, never shift it, so a walk through the pages
returns no row twice and skips no row that existed when it began. That holds for keys
that do not change: ``created_at`` never does. Sorting by ``position``, ``updated_at``
or ``title`` orders by values an update changes (a card moved, a title edited), so a row
updated during the walk may move across the cursor (seen twice, or not at all) —
inherent to any cursor over a mutable key.

A page holds ``limit`` rows, or fewer when more would take its JSON past
``MAX_PAGE_BYTES`` (a resource may be large: its body and data): it then ends early, at
least one row in it, and ``next_cursor`` goes on after its last row.

Search is ``websearch_to_tsquery`` (quotes, ``or``, ``-word``) against the generated
``search`` column (GIN index), in the order requested, not by rank: a stable order is
what makes cursors work.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, func, select, tuple_

from handlers.pagination import cursor_str, cursor_time, cursor_uuid, decode_cursor, encode_cursor
from handlers.resources.models import SEARCH_CONFIG, Resource
from handlers.resources.views import resource_public
from hubbub.contracts.api.resources import (
    MAX_DATA_BYTES,
    MAX_PAGE_BYTES,
    MAX_POSITION_LENGTH,
    MAX_TAGS,
    Order,
    ResourceListParams,
    ResourcePage,
    ResourcePublic,
    SortField,
)

SORT_COLUMNS: dict[SortField, Any] = {
    SortField.POSITION: Resource.position,
    SortField.CREATED_AT: Resource.created_at,
    SortField.UPDATED_AT: Resource.updated_at,
    SortField.TITLE: Resource.title,
}
TEXT_SORTS = (SortField.POSITION, SortField.TITLE)


def _scope(params: ResourceListParams) -> str:
    return f"resources:{params.sort.value}:{params.direction.value}"


def filtered(params: ResourceListParams) -> Select[Resource]:
    statement = select(Resource).where(Resource.workspace_id == params.workspace_id)
    statement = statement.where(
        Resource.deleted_at.is_not(None) if params.deleted else Resource.deleted_at.is_(None)
    )
    if params.status is not None:
        statement = statement.where(Resource.status == params.status)
    if params.kind is not None:
        statement = statement.where(Resource.kind == params.kind)
    if params.tag:
        statement = statement.where(Resource.tags.contains(list(dict.fromkeys(params.tag))))
    if params.updated_since is not None:
        statement = statement.where(Resource.updated_at >= params.updated_since)
    if params.created_by is not None:
        statement = statement.where(Resource.created_by == params.created_by)
    if params.q is not None and params.q.strip():
        query = func.websearch_to_tsquery(SEARCH_CONFIG, params.q)
        statement = statement.where(Resource.search.op("@@")(query))
    return statement


def _after(params: ResourceListParams, cursor: str) -> ColumnElement[bool]:
    value, last_id = decode_cursor(cursor, _scope(params), 2)
    key = cursor_str(value) if params.sort in TEXT_SORTS else cursor_time(value)
    column = SORT_COLUMNS[params.sort]
    left, right = tuple_(column, Resource.id), tuple_(key, cursor_uuid(last_id))
    return left > right if params.direction is Order.ASC else left < right


def page_query(params: ResourceListParams) -> Select[Resource]:
    statement = filtered(params)
    if params.cursor:
        statement = statement.where(_after(params, params.cursor))
    column = SORT_COLUMNS[params.sort]
    if params.direction is Order.ASC:
        statement = statement.order_by(column.asc(), Resource.id.asc())
    else:
        statement = statement.order_by(column.desc(), Resource.id.desc())
    return statement.limit(params.limit + 1)


# The serializer the reply's items go through: what it makes of one is its share of the page.
_item_json = ResourcePublic.__pydantic_serializer__.to_json
# The page's JSON besides its items: ``{"items":[…],"next_cursor":"…"}``, the cursor
# holding a sort value (a title: up to 200 characters, 4 bytes each, in base64).
_PAGE_OVERHEAD = 2048
# The most bytes JSON makes of one character: a control character, ``\u001f``.
ESCAPED = 6
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
# An item's JSON with its text, tags and data empty and its version 0: the keys, the
# punctuation, four ids (none null) and three timestamps at their longest (microseconds
# and an offset: ``…T00:00:00.000000+05:30``), and its comma in the page.
_FIXED = 1 + len(
    _item_json(
        ResourcePublic(
            id=uuid.UUID(int=0),
            workspace_id=uuid.UUID(int=0),
            kind="",
            title="",
            body="",
            status="",
            position="",
            tags=[],
            data={},
            version=0,
            created_by=uuid.UUID(int=0),
            updated_by=uuid.UUID(int=0),
            created_at=_EPOCH.replace(microsecond=1),
            updated_at=_EPOCH.replace(microsecond=1),
            deleted_at=_EPOCH.replace(microsecond=1),
        )
    )
)


def share_bound(item: ResourcePublic) -> int | None:
    """At least what ``item`` adds to a page's JSON (``share``), counted without
    serializing it: each character of its text as the most bytes JSON makes of one, and
    its data as orjson writes it — byte for byte what the reply's serializer writes
    (tests/unit/test_resource_pages.py pins it). None: data orjson cannot write (an
    integer beyond 64 bits), to be measured."""
    try:
        data = len(orjson.dumps(item.data)) - 2  # "{}" is in _FIXED
    except orjson.JSONEncodeError:
        return None
    text = len(item.title) + len(item.body) + len(item.kind) + len(item.status)
    text += len(item.position) + sum(map(len, item.tags))
    # Each tag's quotes and comma; the version's digits and sign beyond the "0".
    return _FIXED + ESCAPED * text + 3 * len(item.tags) + data + len(str(item.version)) - 1


def share(item: ResourcePublic) -> int:
    """What ``item`` adds to a page's JSON, exactly: its own, and its comma."""
    return len(_item_json(item)) + 1


# A resource's JSON at its largest: its text at the longest the contract allows (a title
# of 200 characters, a body of 100,000, kind and status 32, position 64, 20 tags of 40),
# each character at its most bytes, 32 KiB of data as read back, a version of 19 digits
# and a sign. Data grows when read back: jsonb keeps numbers as exact decimals, so
# ``1e+19`` (5 bytes and a comma, as orjson writes it) comes back as a 20-digit integer —
# 3.5 times the bytes, at most; ``DATA_GROWTH`` rounds that up.
DATA_GROWTH = 4
LARGEST_ITEM_BYTES = (
    _FIXED
    + ESCAPED * (200 + 100_000 + 32 + 32 + MAX_POSITION_LENGTH + MAX_TAGS * 40)
    + 3 * MAX_TAGS
    + DATA_GROWTH * MAX_DATA_BYTES
    - 2
    + 19
)
# The largest answer of the resources operations: a page (which ends before it passes
# MAX_PAGE_BYTES, but holds at least one resource), or one resource.
LARGEST_REPLY_BYTES = max(MAX_PAGE_BYTES, _PAGE_OVERHEAD + LARGEST_ITEM_BYTES)


def to_page(params: ResourceListParams, rows: list[Resource]) -> ResourcePage:
    """The page of ``rows`` (``page_query``'s: one more than ``limit`` when there are
    more): at most ``limit`` of them and, past the first, no more than fit in
    ``MAX_PAGE_BYTES`` of JSON.

    Each item is counted by ``share_bound``, serialized only near the budget: where
    the bounds would end the page, the items counted so far by their bounds are measured
    (each once), so the page ends exactly where measuring every item would end it."""
    items: list[ResourcePublic] = []
    size = _PAGE_OVERHEAD  # at least the page's JSON so far
    bounded: list[tuple[ResourcePublic, int]] = []  # items counted by their bound
    for row in rows[: params.limit]:
        item = resource_public(row)
        bound = share_bound(item)
        if bound is None or (items and size + bound > MAX_PAGE_BYTES):
            for earlier, counted in bounded:
                size += share(earlier) - counted
            bounded.clear()
            bound = share(item)
            if items and size + bound > MAX_PAGE_BYTES:
                break
        else:
            bounded.append((item, bound))
        items.append(item)
        size += bound
    next_cursor = None
    if len(rows) > len(items) and items:
        next_cursor = encode_cursor(
            _scope(params), _sort_value(params, items[-1]), str(items[-1].id)
        )
    return ResourcePage(items=items, next_cursor=next_cursor)


def _sort_value(params: ResourceListParams, item: ResourcePublic) -> str:
    if params.sort is SortField.POSITION:
        return item.position
    if params.sort is SortField.TITLE:
        return item.title
    value = item.created_at if params.sort is SortField.CREATED_AT else item.updated_at
    return value.isoformat()
