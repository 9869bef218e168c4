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

from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, tuple_

from handlers.pagination import cursor_str, cursor_time, cursor_uuid, decode_cursor, encode_cursor
from handlers.resources.models import SEARCH_CONFIG, Resource
from handlers.resources.views import resource_public
from hubbub.contracts.api.resources import (
    MAX_PAGE_BYTES,
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


def to_page(params: ResourceListParams, rows: list[Resource]) -> ResourcePage:
    """The page of ``rows`` (``page_query``'s: one more than ``limit`` when there are
    more): at most ``limit`` of them and, past the first, no more than fit in
    ``MAX_PAGE_BYTES`` of JSON."""
    items: list[ResourcePublic] = []
    size = _PAGE_OVERHEAD
    for row in rows[: params.limit]:
        item = resource_public(row)
        size += len(_item_json(item)) + 1  # and its comma
        if size > MAX_PAGE_BYTES and items:
            break
        items.append(item)
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
