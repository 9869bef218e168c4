"""Shapes shared by the domain's operations: pages, cursors, text, optional patch fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

T = TypeVar("T")

MAX_PAGE = 100


def _not_null(value: T | None) -> T:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


# Refuses an explicit null where a field may only be left out (PATCH fields: left out
# means unchanged). Use as ``Annotated[X | SkipJsonSchema[None], NotNull] = None``: the
# JSON schema then shows the bare type.
NotNull = AfterValidator(_not_null)

# One line of text: no control characters, at least one non-space character, stripped
# (after the length check, so the JSON schema states exactly what is accepted).
_LINE = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def _strip(value: str) -> str:
    return value.strip()


Strip = AfterValidator(_strip)
MAX_TITLE = 200
Title = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE, pattern=_LINE), Strip]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_LINE), Strip]
# Multi-line text: newlines and tabs welcome, NUL not.
Body = Annotated[str, StringConstraints(max_length=100_000, pattern=r"^[^\x00]*$")]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("an RFC 3339 date-time with its offset, like 2026-11-26T10:00:00Z")
    return value


def _in_utc_range(value: datetime) -> datetime:
    # The database driver converts to UTC, where 0001-01-01T00:00:00+01:00 (or
    # 9999-12-31T23:59:59-05:00) leaves datetime's range: a 500, not the bad input it is.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("in UTC, between years 1 and 9999") from None
    return value


# A point in time as RFC 3339 text with an offset (no bare dates, no unix numbers),
# within years 1-9999 in UTC.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc_range)]

# A lower-case word used as a machine value: a resource's kind or status.
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]

# The longest cursor the server makes: resources by title, base64url of
# ``["resources:<sort>:<order>", title, id]``. JSON takes at most 6 bytes a character
# of the title (orjson writes UTF-8, at most 4; ``\uXXXX`` is 6), a scope at most 32
# and a UUID 36, with 10 of quotes, commas and brackets.
_LONGEST_CURSOR_JSON = 10 + 32 + 6 * MAX_TITLE + 36
MAX_CURSOR = 4 * -(-_LONGEST_CURSOR_JSON // 3)  # base64: 4 characters per 3 bytes

Cursor = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_CURSOR),
    Field(description="`next_cursor` of the previous page; opaque"),
]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description=f"Items per page, at most {MAX_PAGE}")]
ExpectedVersion = Annotated[
    int | None,
    Field(
        ge=1,
        description="Fail with `conflict` unless the entity is at this version "
        "(over REST: the If-Match header, failing with 412)",
    ),
]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatchParams(Params):
    """Params of a PATCH: the body must change something (at least one field)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    patchable: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _something_to_change(self) -> PatchParams:
        if self.patchable and not self.model_fields_set & set(self.patchable):
            raise ValueError(f"give at least one of: {', '.join(self.patchable)}")
        return self

    def changes(self, *fields: str) -> dict[str, Any]:
        """The given fields that the caller sent (and so wants changed)."""
        return {name: getattr(self, name) for name in fields if name in self.model_fields_set}
