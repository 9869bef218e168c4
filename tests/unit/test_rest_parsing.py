"""Pure helpers of the REST edge."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from hub.rest import _list_fields, entity_tags, none_match, parse_if_match
from hubbub.contracts.errors import BadRequest, PreconditionFailed


class TestEntityTags:
    """``If-Match`` and ``If-None-Match`` are ``*`` or a list of entity-tags (RFC 9110
    §13.1.1-2): each quoted, maybe ``W/`` before it, its quoted string holding any
    visible character but ``"`` (a comma too)."""

    @pytest.mark.parametrize(
        ("header", "tags"),
        [
            ('"7"', ['"7"']),
            ('W/"7"', ['W/"7"']),
            ('"7", W/"8-admin"', ['"7"', 'W/"8-admin"']),
            ('"a,b","7"', ['"a,b"', '"7"']),
            (' , "7" ,, "x" ,', ['"7"', '"x"']),  # empty list elements are allowed
            ('""', ['""']),
            ('"\u00e9t\u00e9"', ['"\u00e9t\u00e9"']),  # obs-text
        ],
    )
    def test_a_list_of_entity_tags(self, header: str, tags: list[str]) -> None:
        assert entity_tags(header) == tags

    def test_star_is_any_current_representation(self) -> None:
        assert entity_tags(" * ") is None

    @pytest.mark.parametrize(
        "header",
        [
            "7",
            '"7',
            '7"',
            "W/7",
            'w/"7"',
            '"7" "8"',
            '*, "7"',
            '"7", *',
            '"a"b"',
            '"7"x',
            "",
            " , ",
        ],
    )
    def test_anything_else_is_not_a_list_of_entity_tags(self, header: str) -> None:
        with pytest.raises(ValueError, match="entity-tag"):
            entity_tags(header)


class TestIfMatch:
    """Strong comparison: only a tag this API issued for a version, not weak, matches."""

    @pytest.mark.parametrize(("header", "version"), [('"7"', 7), ('"123456789"', 123456789)])
    def test_our_etags_are_versions(self, header: str, version: int) -> None:
        assert parse_if_match(header) == version

    @pytest.mark.parametrize(("header", "version"), [('"7-admin"', 7), ('"12-viewer"', 12)])
    def test_a_tag_with_the_callers_role_is_its_version(self, header: str, version: int) -> None:
        """A workspace's ETag adds the caller's role; a write is conditional on the
        version alone."""
        assert parse_if_match(header) == version

    @pytest.mark.parametrize(
        ("header", "version"),
        [('"3", "3-admin"', 3), ('W/"9", "4"', 4), ('"abc", "5-owner", ""', 5), ('"x,9", "2"', 2)],
    )
    def test_a_list_is_the_one_version_its_strong_tags_of_ours_name(
        self, header: str, version: int
    ) -> None:
        """A weak tag, or one this API never issues, cannot match strongly: it is left
        out (a comma inside a quoted tag does not split it)."""
        assert parse_if_match(header) == version

    @pytest.mark.parametrize(
        ("header", "version"), [("7", 7), ('"7', 7), ('7"', 7), ("7-admin", 7), (" 12 ", 12)]
    )
    def test_a_lone_version_without_its_quotes_is_that_version(
        self, header: str, version: int
    ) -> None:
        """Not an entity-tag, but a form the API document's If-Match pattern allows."""
        assert parse_if_match(header) == version

    def test_star_makes_no_version_the_condition(self) -> None:
        assert parse_if_match("*") is None

    @pytest.mark.parametrize(
        "header",
        ['W/"7"', "W/7", 'W/"7', '"abc"', '"-1"', '"0"', '"7-"', '"7-\u0663"', 'W/"1", "x"'],
    )
    def test_tags_none_of_which_can_match_fail_the_precondition(self, header: str) -> None:
        with pytest.raises(PreconditionFailed):
            parse_if_match(header)

    @pytest.mark.parametrize("header", ["0", "abc", "", '"7" "8"', '"7", 8', '*, "7"'])
    def test_a_malformed_value_is_a_bad_request(self, header: str) -> None:
        with pytest.raises(BadRequest):
            parse_if_match(header)

    def test_several_versions_are_a_bad_request(self) -> None:
        """The version travels to the handler as one ``expected_version``: a list naming
        two versions cannot be carried, and is refused rather than half obeyed."""
        with pytest.raises(BadRequest, match="one version"):
            parse_if_match('"3", "4-admin"')


class TestIfNoneMatch:
    """Weak comparison: ``W/"3"`` matches ``"3"``; the whole opaque tag counts."""

    @pytest.mark.parametrize(
        "header",
        [
            '"3-admin"',
            'W/"3-admin"',
            '"1", "3-admin"',
            '"a,b", W/"3-admin"',
            "*",
            ' "x" , "3-admin" ',
        ],
    )
    def test_a_list_naming_the_current_tag_matches(self, header: str) -> None:
        assert none_match(header, '"3-admin"')

    @pytest.mark.parametrize(
        "header", ['"3"', '"3-owner"', '"3-admin,x"', 'W/"3-admin', "3-admin", "", '"3-admin" x']
    )
    def test_anything_else_does_not(self, header: str) -> None:
        """Another tag, the bare version of a role-specific tag, or a value that is not a
        list of entity-tags (ignored: the full answer is never wrong)."""
        assert not none_match(header, '"3-admin"')


class TestListFields:
    def test_list_typed_fields_take_repeated_query_parameters(self) -> None:
        class Q(BaseModel):
            tag: list[str] | None = None
            kinds: list[str] = []
            status: str | None = None
            limit: int = 50

        assert _list_fields(Q) == {"tag", "kinds"}
