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

# One line of text (titles and names): refused anywhere are control characters (Cc),
# line and paragraph separators (U+2028, U+2029) and the format characters that hide or
# reorder text: soft hyphen, zero-width space, bidi embeddings, overrides and isolates,
# word joiner and invisible operators, byte order mark (U+FEFF), interlinear annotation.
# Other format characters stay: the joiners (U+200C/U+200D, in emoji sequences and in
# Persian or Indic text), the direction marks (U+200E/U+200F/U+061C), and those of
# particular scripts and of emoji tag sequences (flags), above the BMP.
_REFUSED = (
    r"\u0000-\u001f\u007f-\u009f\u00ad\u180e\u200b\u2028\u2029\u202a-\u202e"
    r"\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
# Spaces, spelled out: ``\s`` is not the same set in Python, Rust and ECMAScript regexes.
_SPACES = r"\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
# What shows nothing on its own: every format character (Cf) and every default-ignorable
# code point (fillers such as U+3164, variation selectors, tags), and the braille blank.
# Those above the BMP are in the pattern as themselves (not raw strings): the regex
# dialects that read it (Rust's, Python's, ECMAScript's) share no escape for them.
_INVISIBLE = (
    r"\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
    r"\u17b4\u17b5\u180b-\u180f\u200c-\u200f\u2800\u3164\ufe00-\ufe0f\uffa0"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
# Stated as one pattern for the API documents; ``_check_line`` applies it with reasons.
LINE_PATTERN = f"^[^{_REFUSED}]*[^{_REFUSED}{_SPACES}{_INVISIBLE}][^{_REFUSED}]*$"
_REFUSED_CHARACTER = re.compile(f"[{_REFUSED}]")
_VISIBLE_CHARACTER = re.compile(f"[^{_REFUSED}{_SPACES}{_INVISIBLE}]")


def _check_line(value: str) -> str:
    refused = _REFUSED_CHARACTER.search(value)
    if refused is not None:
        raise ValueError(
            f"one line of text: U+{ord(refused.group()):04X} (a control, line separator or"
            " invisible format character) is not allowed"
        )
    if _VISIBLE_CHARACTER.search(value) is None:
        raise ValueError("not blank: at least one visible character")
    return value


def _strip(value: str) -> str:
    return value.strip()


Strip = AfterValidator(_strip)
# Checked before stripped, so that the JSON schema states exactly what is accepted.
OneLine = AfterValidator(_check_line)
_LINE_SCHEMA = Field(json_schema_extra={"pattern": LINE_PATTERN})
MAX_TITLE = 200
Title = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TITLE), OneLine, _LINE_SCHEMA, Strip
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100), OneLine, _LINE_SCHEMA, Strip]
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
