"""Resources: the business records of a workspace.

Viewers read; members create, change, delete (softly) and restore; admins may also
delete for good (``hard=true``). Every change raises ``version`` by one; the ``ETag`` of
a single read is the version, and ``If-Match`` (RPC: ``expected_version``) makes a change
conditional on it. Soft-deleted resources disappear from reads and lists unless asked
for (``include_deleted``, ``deleted``) and come back with ``restore``.

A resource's ``position`` orders it within its board column (its ``status``): an order
key of the fractional-indexing algorithm (the npm package ``fractional-indexing``,
``generateKeyBetween`` with base-62 digits), compared as plain byte strings; equal keys
are ordered by ``id``. A create without one goes after the column's current last key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypeAliasType

from hubbub.contracts.api.common import (
    Body,
    Cursor,
    ExpectedVersion,
    Limit,
    NotNull,
    Params,
    PatchParams,
    Slug,
    Timestamp,
    Title,
)
from hubbub.contracts.errors import ErrorCode
from hubbub.contracts.operations import Access, Catalog, Empty, Http, Operation

MAX_DATA_BYTES = 32 * 1024
# How deep ``data`` may nest: the object itself is level 1, each array or object in it
# one more. A worker's reply is parsed with pydantic's JSON parser, which stops at 200
# levels (with the reply's own objects around ``data``): a deeper object would be
# stored, then fail every read of it, and every page of the list it is on.
MAX_DATA_DEPTH = 32
MAX_TAGS = 20
MAX_POSITION_LENGTH = 64
# A page of ``resources.list`` ends early, with a ``next_cursor``, before the resource
# that would take its JSON past this. Well under NATS's default max_payload (1 MiB),
# which a worker's reply must fit: a page holds at least one resource, and the largest
# one (a 100,000-character body, 32 KiB of data) is about 640 KB.
MAX_PAGE_BYTES = 512 * 1024


def _depth(value: dict[str, Any]) -> int:
    """How many levels of arrays and objects ``value`` has (itself the first)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DATA_DEPTH:
                break
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return deepest


def _check_data(value: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = orjson.dumps(value)
    except TypeError as exc:  # e.g. an integer beyond 64 bits (only from Python callers)
        raise ValueError(f"not storable as JSON: {exc}") from None
    if len(encoded) > MAX_DATA_BYTES:
        raise ValueError(f"at most {MAX_DATA_BYTES} bytes of JSON (this is {len(encoded)})")
    if _depth(value) > MAX_DATA_DEPTH:  # after the size: a walk of at most 32 KiB
        raise ValueError(f"nested at most {MAX_DATA_DEPTH} levels deep (arrays and objects)")
    return value


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def integer_length(head: str) -> int:
    """The length of an order key's integer part, told by its first character: ``a`` to
    ``z`` 2 to 27 characters, ``Z`` to ``A`` 2 to 27 (fractional-indexing's
    ``getIntegerLength``)."""
    if "a" <= head <= "z":
        return ord(head) - ord("a") + 2
    if "A" <= head <= "Z":
        return ord("Z") - ord(head) + 2
    raise ValueError(f"an order key starts with a letter, not {head!r}")


def _check_position(key: str) -> str:
    """What fractional-indexing's ``validateOrderKey`` accepts, so that every stored key
    can be the neighbour of a new one, on the server and in the browser."""
    if key == "A" + "0" * 26:
        raise ValueError("the smallest integer is not an order key")
    if integer_length(key[0]) > len(key):
        raise ValueError("too short for its integer part")
    if len(key) > integer_length(key[0]) and key.endswith("0"):
        raise ValueError("the fractional part of an order key does not end with 0")
    return key


Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$")]
Tags = Annotated[
    list[Tag],
    Field(max_length=MAX_TAGS, description=f"At most {MAX_TAGS}; repeats are dropped"),
    AfterValidator(_unique),
]
# Any JSON, but no NUL character in a string or key: PostgreSQL's jsonb cannot hold one.
JsonText = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
JsonValue = TypeAliasType(
    "JsonValue",
    "JsonText | int | float | bool | list[JsonValue] | dict[JsonText, JsonValue] | None",
)
Data = Annotated[
    dict[JsonText, JsonValue],
    Field(
        description=f"Any JSON object, at most {MAX_DATA_BYTES} bytes serialized"
        f" and {MAX_DATA_DEPTH} levels deep"
    ),
    AfterValidator(_check_data),
]
Kind = Annotated[Slug, Field(description="What sort of record this is, e.g. `task`")]
Status = Annotated[Slug, Field(description="A workflow state, e.g. `open`, `done`")]
# The same rule as ``_check_position``, written as one regular expression for the API
# documents: a head letter, the integer part it announces (``a``/``Z`` one more digit …
# ``z``/``A`` 26 more), then a fraction not ending in 0; never the smallest integer.
POSITION_PATTERN = (
    "^(?!A0{26}$)(?:"
    + "|".join(f"[{chr(ord('a') + n)}{chr(ord('Z') - n)}][0-9A-Za-z]{{{n + 1}}}" for n in range(26))
    + ")(?:[0-9A-Za-z]*[1-9A-Za-z])?$"
)
Position = Annotated[
    str,
    StringConstraints(pattern=rf"^[0-9A-Za-z]{{1,{MAX_POSITION_LENGTH}}}$"),
    Field(
        description="Order key within the board column (the status): a fractional-indexing"
        " key (base-62 `generateKeyBetween`), compared as byte strings; ties by id",
        examples=["a0"],
        # The documents state the whole rule, so that a client (or a fuzzer) that follows
        # them sends only keys the server accepts; the validator below gives the reason.
        json_schema_extra={"pattern": POSITION_PATTERN, "maxLength": MAX_POSITION_LENGTH},
    ),
    AfterValidator(_check_position),
]


class ResourcePublic(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    kind: str
    title: str
    body: str
    status: str
    position: str = Field(description="Order key within the status column (byte order)")
    tags: list[str]
    data: dict[str, Any]
    version: int = Field(description="Rises by one with every change; the ETag")
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class ResourcePage(BaseModel):
    items: list[ResourcePublic]
    next_cursor: str | None = None


class ResourceCreate(Params):
    workspace_id: uuid.UUID
    kind: Kind
    title: Title
    body: Body = ""
    status: Status = "open"
    position: Annotated[
        Position | SkipJsonSchema[None],
        NotNull,
        Field(description="Where in its column; left out: after the column's last card"),
    ] = None
    tags: Tags = Field(default_factory=list)
    data: Data = Field(default_factory=dict)


class ResourceUpdate(PatchParams):
    patchable = ("kind", "title", "body", "status", "position", "tags", "data")

    workspace_id: uuid.UUID
    resource_id: uuid.UUID
    kind: Annotated[Kind | SkipJsonSchema[None], NotNull] = None
    title: Annotated[Title | SkipJsonSchema[None], NotNull] = None
    body: Annotated[Body | SkipJsonSchema[None], NotNull] = None
    status: Annotated[Status | SkipJsonSchema[None], NotNull] = None
    position: Annotated[
        Position | SkipJsonSchema[None],
        NotNull,
        Field(description="A move: with `status`, to another column in the same change"),
    ] = None
    tags: Annotated[Tags | SkipJsonSchema[None], NotNull] = None
    data: Annotated[
        Data | SkipJsonSchema[None], NotNull, Field(description="Replaces the whole object")
    ] = None
    expected_version: ExpectedVersion = None


class ResourceRef(Params):
    workspace_id: uuid.UUID
    resource_id: uuid.UUID


class ResourceGet(ResourceRef):
    include_deleted: bool = Field(default=False, description="Also find a soft-deleted one")


class ResourceDelete(ResourceRef):
    hard: bool = Field(default=False, description="Delete for good (admins); else softly")
    expected_version: ExpectedVersion = None


class ResourceRestore(ResourceRef):
    expected_version: ExpectedVersion = None


class SortField(StrEnum):
    POSITION = "position"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    TITLE = "title"


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


class ResourceListParams(Params):
    workspace_id: uuid.UUID
    status: Status | None = None
    kind: Kind | None = None
    tag: list[Tag] | None = Field(
        default=None, max_length=MAX_TAGS, description="Has every one of these tags"
    )
    updated_since: Timestamp | None = Field(default=None, description="Changed at or after")
    created_by: uuid.UUID | None = None
    q: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] | None = Field(
        default=None, description="Full-text search over title and body (web search syntax)"
    )
    deleted: bool = Field(default=False, description="List the soft-deleted ones instead")
    sort: SortField = Field(
        default=SortField.POSITION,
        description="`position`: the board's order (byte order of the key, then id)",
    )
    order: Annotated[
        Order | SkipJsonSchema[None],
        NotNull,
        Field(description="Default: `asc` for `position`, `desc` for the other sorts"),
    ] = None
    limit: Limit = 50
    cursor: Cursor | None = None

    @property
    def direction(self) -> Order:
        """``order``, or the sort's own default when it was left out."""
        if self.order is not None:
            return self.order
        return Order.ASC if self.sort is SortField.POSITION else Order.DESC


catalog = Catalog()
_TAGS = ("resources",)
_READ_ERRORS = (ErrorCode.NOT_FOUND,)
_WRITE_ERRORS = (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT)

list_resources = catalog.add(
    Operation(
        name="resources.list",
        params=ResourceListParams,
        result=ResourcePage,
        access=Access.USER,
        http=Http("GET", "/workspaces/{workspace_id}/resources"),
        summary="List, filter, sort and search a workspace's resources, a page at a time",
        tags=_TAGS,
        errors=_READ_ERRORS,
    )
)
create = catalog.add(
    Operation(
        name="resources.create",
        params=ResourceCreate,
        result=ResourcePublic,
        access=Access.USER,
        http=Http("POST", "/workspaces/{workspace_id}/resources", status=201, etag="version"),
        mutating=True,
        # No actor key: creates into one workspace need no order among themselves (the
        # database keeps each one whole), so a busy workspace is not one queue.
        summary="Create a resource (members)",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT),
    )
)
get = catalog.add(
    Operation(
        name="resources.get",
        params=ResourceGet,
        result=ResourcePublic,
        access=Access.USER,
        http=Http("GET", "/workspaces/{workspace_id}/resources/{resource_id}", etag="version"),
        summary="One resource",
        tags=_TAGS,
        errors=_READ_ERRORS,
    )
)
update = catalog.add(
    Operation(
        name="resources.update",
        params=ResourceUpdate,
        result=ResourcePublic,
        access=Access.USER,
        http=Http(
            "PATCH",
            "/workspaces/{workspace_id}/resources/{resource_id}",
            etag="version",
            if_match="expected_version",
        ),
        mutating=True,
        key="resource_id",  # changes of one resource in arrival order (per process)
        summary="Change some fields of a resource (members)",
        tags=_TAGS,
        errors=_WRITE_ERRORS,
    )
)
delete = catalog.add(
    Operation(
        name="resources.delete",
        params=ResourceDelete,
        result=Empty,
        access=Access.USER,
        http=Http(
            "DELETE",
            "/workspaces/{workspace_id}/resources/{resource_id}",
            status=204,
            if_match="expected_version",
        ),
        mutating=True,
        key="resource_id",  # changes of one resource in arrival order (per process)
        summary="Delete a resource: softly (members) or for good (admins, hard=true)",
        tags=_TAGS,
        errors=_WRITE_ERRORS,
    )
)
restore = catalog.add(
    Operation(
        name="resources.restore",
        params=ResourceRestore,
        result=ResourcePublic,
        access=Access.USER,
        http=Http(
            "POST",
            "/workspaces/{workspace_id}/resources/{resource_id}/restore",
            etag="version",
            if_match="expected_version",
        ),
        mutating=True,
        key="resource_id",  # changes of one resource in arrival order (per process)
        summary="Bring a soft-deleted resource back (members)",
        tags=_TAGS,
        errors=_WRITE_ERRORS,
    )
)
