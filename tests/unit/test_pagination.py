"""Keyset cursors: opaque, bound to their listing and sort, refused when forged."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from pydantic import TypeAdapter

from handlers.pagination import cursor_int, cursor_str, cursor_time, decode_cursor, encode_cursor
from hubbub.contracts.api.common import MAX_TITLE, Cursor
from hubbub.contracts.api.workspaces import WorkspaceRole
from hubbub.contracts.errors import BadRequest


class TestCursors:
    def test_a_cursor_round_trips_its_values(self) -> None:
        cursor = encode_cursor("resources:title:asc", "Fix it", "6f1c0a5e")
        assert decode_cursor(cursor, "resources:title:asc", 2) == ["Fix it", "6f1c0a5e"]

    def test_a_cursor_is_url_safe(self) -> None:
        cursor = encode_cursor("s", "ü?&/" * 10, 1)
        assert cursor.replace("-", "").replace("_", "").isalnum()

    @pytest.mark.parametrize(
        "cursor",
        [
            encode_cursor("resources:title:desc", "x", "id"),  # another sort
            encode_cursor("resources:title:asc", "x"),  # too few values
            encode_cursor("resources:title:asc", {"a": 1}, "id"),  # not a scalar
            "not base64 at all!",
            "bnVsbA",  # "null"
        ],
    )
    def test_anything_else_is_a_bad_request(self, cursor: str) -> None:
        with pytest.raises(BadRequest):
            decode_cursor(cursor, "resources:title:asc", 2)

    @pytest.mark.parametrize(
        ("parse", "value"),
        [
            (cursor_str, "a\x00b"),  # PostgreSQL's text cannot hold a NUL
            (cursor_int, 2**63),  # past bigint
            (cursor_int, -(2**63) - 1),
            (cursor_time, "0001-01-01T00:00:00+05:00"),  # before year 1 in UTC
            (cursor_time, "9999-12-31T23:00:00-05:00"),  # after year 9999 in UTC
        ],
    )
    def test_values_the_database_cannot_compare_are_a_bad_request(
        self, parse: Callable[[object], object], value: object
    ) -> None:
        with pytest.raises(BadRequest):
            parse(value)

    @pytest.mark.parametrize("character", ["😀", '"', "\\", "漢"])
    def test_the_longest_cursor_the_server_makes_is_a_valid_cursor(self, character: str) -> None:
        cursor = encode_cursor(
            "resources:updated_at:desc", character * MAX_TITLE, str(uuid.uuid4())
        )
        assert TypeAdapter(Cursor).validate_python(cursor) == cursor

    def test_the_edges_of_what_the_database_holds_are_taken(self) -> None:
        assert cursor_int(2**63 - 1) == 2**63 - 1
        assert cursor_str("ü") == "ü"
        assert cursor_time("0001-01-01T00:00:00+00:00").year == 1

    def test_times_must_carry_their_offset_and_ids_be_integers(self) -> None:
        assert cursor_time("2026-11-26T10:00:00+00:00").tzinfo is not None
        with pytest.raises(BadRequest):
            cursor_time("2026-11-26T10:00:00")
        with pytest.raises(BadRequest):
            cursor_int(True)


class TestRoles:
    def test_roles_rank_viewer_member_admin_owner(self) -> None:
        ranked = sorted(WorkspaceRole, key=lambda r: r.rank)
        assert ranked == [
            WorkspaceRole.VIEWER,
            WorkspaceRole.MEMBER,
            WorkspaceRole.ADMIN,
            WorkspaceRole.OWNER,
        ]
        assert WorkspaceRole.ADMIN.at_least(WorkspaceRole.MEMBER)
        assert not WorkspaceRole.VIEWER.at_least(WorkspaceRole.MEMBER)
