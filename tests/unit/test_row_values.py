"""What of a database error's text is kept in logs and error reports: not the values of
the row PostgreSQL quotes in its DETAIL, everything else."""

from __future__ import annotations

import pytest

from hubbub.logs import without_row_values


@pytest.mark.parametrize(
    "detail",
    [
        "Key (email)=(bob@example.com) already exists.",
        "Failing row contains (7, bob@example.com, $argon2id$v=19$m=65536).",
        'Key (workspace_id)=(6f1c) is not present in table "workspaces".',
        "Key (title)=(a line\nand another) already exists.",
    ],
)
def test_the_row_values_of_a_detail_are_cut_up_to_the_next_part(detail: str) -> None:
    text = f"duplicate key value\nDETAIL:  {detail}\n[SQL: INSERT INTO users ...]"
    assert without_row_values(text) == (
        "duplicate key value\nDETAIL:  [row values removed]\n[SQL: INSERT INTO users ...]"
    )


def test_a_detail_that_quotes_no_values_stays() -> None:
    """A deadlock's DETAIL says which processes waited for what: it is the diagnosis."""
    text = (
        "deadlock detected\nDETAIL:  Process 1 waits for ShareLock on transaction 2; "
        "blocked by process 3.\nHINT:  See server log for query details."
    )
    assert without_row_values(text) == text


def test_the_same_words_inside_a_line_stay() -> None:
    text = 'raise KeyError("Key (a)=(b) already exists") # Failing row contains (x)'
    assert without_row_values(text) == text


def test_a_detail_that_is_an_exception_s_whole_text_is_cut_too() -> None:
    """SQLAlchemy's asyncpg adapter raises an error whose text is the DETAIL alone."""
    assert without_row_values("Key (email)=(bob@example.com) already exists.") == (
        "Key (email)=([row values removed]) already exists."
    )
    assert without_row_values("Failing row contains (7, bob@example.com).") == (
        "Failing row contains [row values removed]"
    )
