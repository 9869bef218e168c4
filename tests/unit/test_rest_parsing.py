"""Pure helpers of the REST edge."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from hub.rest import _list_fields, parse_if_match
from hubbub.contracts.errors import BadRequest


class TestIfMatch:
    @pytest.mark.parametrize(("header", "version"), [('"7"', 7), ('W/"12"', 12), ("3", 3)])
    def test_our_etags_are_versions(self, header: str, version: int) -> None:
        assert parse_if_match(header) == version

    @pytest.mark.parametrize(("header", "version"), [('"7-admin"', 7), ('W/"12-viewer"', 12)])
    def test_a_tag_with_the_callers_role_is_its_version(self, header: str, version: int) -> None:
        """A workspace's ETag adds the caller's role; a write is conditional on the
        version alone."""
        assert parse_if_match(header) == version

    @pytest.mark.parametrize(
        "header", ['"abc"', "*", '"-1"', "", '"7-"', '"7-admin-x"', '"-admin"', '"7-\u0663"']
    )
    def test_anything_else_is_a_bad_request(self, header: str) -> None:
        with pytest.raises(BadRequest):
            parse_if_match(header)


class TestListFields:
    def test_list_typed_fields_take_repeated_query_parameters(self) -> None:
        class Q(BaseModel):
            tag: list[str] | None = None
            kinds: list[str] = []
            status: str | None = None
            limit: int = 50

        assert _list_fields(Q) == {"tag", "kinds"}
