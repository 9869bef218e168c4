"""Keyset cursors: opaque, bound to their listing and sort, refused when forged."""

from __future__ import annotations

import pytest

from handlers.pagination import cursor_int, cursor_time, decode_cursor, encode_cursor
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
