"""Titles and names are one line of visible text: no controls, no line separators, no
invisible characters that hide or reorder text, and not blank — and the pattern the API
documents state is exactly that rule."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError

from hubbub.contracts.api.common import LINE_PATTERN, Name, Title

TITLE = TypeAdapter(Title)
NAME = TypeAdapter(Name)
# The pattern as pydantic's own (Rust) regex engine reads it.
RUST = TypeAdapter(Annotated[str, StringConstraints(pattern=LINE_PATTERN)])
PYTHON = re.compile(LINE_PATTERN)


def accepted(value: str) -> bool:
    try:
        TITLE.validate_python(value)
    except ValidationError:
        return False
    return True


def rust_accepts(value: str) -> bool:
    try:
        RUST.validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    "value",
    [
        "\u200b",  # zero-width space
        "\ufeff",  # byte order mark
        "\u3164",  # Hangul filler: a letter that shows nothing
        "\u202eevil.exe",  # right-to-left override
        "a\u2028b",  # line separator
        "a\u2029b",  # paragraph separator
        "a\u2066b\u2069",  # bidi isolates
        "a\u0085b",  # next line (C1 control)
        "a\nb",
        "   ",
        "\u00a0\u3000",  # spaces all the same
        "\u200d\ufe0f",  # a joiner and a variation selector, nothing to join
        "\U000e0067\U000e007f",  # emoji tags without their flag
    ],
)
def test_invisible_or_multi_line_text_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        TITLE.validate_python(value)
    with pytest.raises(ValidationError):
        NAME.validate_python(value)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (" Fix it ", "Fix it"),
        ("👨\u200d👩\u200d👧 family", "👨\u200d👩\u200d👧 family"),  # joiners in emoji
        # Persian "mikhaham", with its zero-width non-joiner
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", None),
        ("\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", None),
        ("שלום\u200f (1)", None),  # a right-to-left mark
        ("漢字", None),
    ],
)
def test_text_of_every_script_and_emoji_is_taken(value: str, stored: str | None) -> None:
    assert TITLE.validate_python(value) == (value if stored is None else stored)


def test_every_control_separator_and_format_character_is_refused_or_invisible() -> None:
    """Whatever the Unicode version: a Cc, Zl, Zp or Cf character is never the one
    visible character of a title."""
    for code in range(0x110000):
        if unicodedata.category(chr(code)) in ("Cc", "Zl", "Zp", "Cf", "Zs"):
            assert not accepted(chr(code)), f"U+{code:04X}"


def test_the_documented_pattern_is_the_rule() -> None:
    """Every BMP character, alone, after a letter and before one; and those above it
    that the rule names, with a few it does not: the validator, the pattern read by
    Python and the pattern read by pydantic's regex engine agree on each."""
    samples = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    samples += [chr(c) for c in (0x110BD, 0x1343F, 0x1BCA0, 0x1D17A, 0xE0000, 0xE0FFF)]
    samples += [chr(c) for c in (0x10000, 0x1F600, 0xE1000, 0x10FFFF)]
    for char in samples:
        for value in (char, "a" + char, char + "a"):
            expected = accepted(value)
            # (fullmatch: Python's ``$`` also matches before a final newline, ECMAScript's
            # and Rust's do not)
            assert (PYTHON.fullmatch(value) is not None) == expected, ascii(value)
            assert rust_accepts(value) == expected, ascii(value)
