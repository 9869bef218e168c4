"""Conditional requests over REST (RFC 9110 §13.1): ``If-None-Match`` on a read and
``If-Match`` on a change take ``*`` or a list of entity-tags. ``If-None-Match`` compares
weakly (``W/"1-owner"`` is ``"1-owner"``), the whole tag; ``If-Match`` strongly (a weak
tag never matches), on the version alone (``"1"`` and ``"1-owner"`` alike)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.workspaces import Domain, Person


@pytest.fixture
def domain(hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> Domain:
    return Domain(hub_client, db)


async def workspace_of(domain: Domain) -> tuple[Person, str]:
    """Ann and the path of her new workspace (version 1: its ETag to her ``"1-owner"``)."""
    ann = await domain.person("ann")
    ws = await domain.workspace(ann)
    return ann, f"/workspaces/{ws['id']}"


class TestIfNoneMatch:
    @pytest.mark.parametrize(
        "header",
        ['"1-owner"', 'W/"1-owner"', '"0-owner", "1-owner"', '"a,b" , W/"1-owner"', "*"],
    )
    async def test_a_list_naming_the_current_etag_is_304(self, domain: Domain, header: str) -> None:
        ann, path = await workspace_of(domain)
        response = await domain.call("GET", path, ann, headers={"If-None-Match": header})
        assert (response.status, response.headers["ETag"]) == (304, '"1-owner"')
        head = await domain.call("HEAD", path, ann, headers={"If-None-Match": header})
        assert head.status == 304

    @pytest.mark.parametrize("header", ['"1"', '"1-owner,x"', '"2-owner", W/"1-viewer"'])
    async def test_a_list_naming_other_tags_is_the_full_answer(
        self, domain: Domain, header: str
    ) -> None:
        """The bare version is not a workspace's tag (that adds the caller's role); a
        comma inside a quoted tag is part of it."""
        ann, path = await workspace_of(domain)
        response = await domain.call("GET", path, ann, headers={"If-None-Match": header})
        assert response.status == 200
        assert (await response.json())["name"] == "Team"

    @pytest.mark.parametrize("header", ["1-owner", '"1-owner', '"1-owner" junk'])
    async def test_a_value_that_is_no_list_of_tags_is_ignored(
        self, domain: Domain, header: str
    ) -> None:
        ann, path = await workspace_of(domain)
        response = await domain.call("GET", path, ann, headers={"If-None-Match": header})
        assert response.status == 200

    async def test_a_list_sent_as_several_lines_is_one_list(self, domain: Domain) -> None:
        ann, path = await workspace_of(domain)
        headers = CIMultiDict(ann.headers)
        headers.add("If-None-Match", '"0-owner"')
        headers.add("If-None-Match", '"1-owner"')
        response = await domain.client.get("/api/v1" + path, headers=headers)
        assert response.status == 304


class TestIfMatch:
    @pytest.mark.parametrize(
        "header", ['"1-owner"', '"1"', '"9x", "1", W/"4"', '"1", "1-owner"', "1", "1-owner"]
    )
    async def test_a_list_whose_strong_tags_name_the_current_version_applies(
        self, domain: Domain, header: str
    ) -> None:
        ann, path = await workspace_of(domain)
        renamed = await domain.call(
            "PATCH", path, ann, json={"name": "B"}, headers={"If-Match": header}, expect=200
        )
        assert (renamed["name"], renamed["version"]) == ("B", 2)

    async def test_star_applies_to_whatever_version_is_current(self, domain: Domain) -> None:
        ann, path = await workspace_of(domain)
        await domain.call("PATCH", path, ann, json={"name": "B"}, expect=200)
        renamed = await domain.call(
            "PATCH", path, ann, json={"name": "C"}, headers={"If-Match": "*"}, expect=200
        )
        assert (renamed["name"], renamed["version"]) == ("C", 3)

    async def test_star_on_an_entity_that_is_not_there_is_404(self, domain: Domain) -> None:
        ann, path = await workspace_of(domain)
        await domain.call("DELETE", path, ann, headers={"If-Match": "*"}, expect=204)
        await domain.call(
            "PATCH", path, ann, json={"name": "B"}, headers={"If-Match": "*"}, expect=404
        )

    @pytest.mark.parametrize("header", ['W/"1-owner"', 'W/"1"', "W/1", '"abc"', '"1-owner,2"'])
    async def test_tags_that_cannot_match_strongly_fail_the_precondition(
        self, domain: Domain, header: str
    ) -> None:
        """A weak tag never matches strongly; a tag this API never issued (a comma inside
        a quoted tag is part of it) never names a version: 412, and nothing changes."""
        ann, path = await workspace_of(domain)
        refused = await domain.call(
            "PATCH", path, ann, json={"name": "B"}, headers={"If-Match": header}, expect=412
        )
        assert refused["code"] == "precondition_failed"
        assert (await domain.call("GET", path, ann, expect=200))["version"] == 1

    async def test_a_stale_version_in_a_list_is_412_with_the_current_one(
        self, domain: Domain
    ) -> None:
        ann, path = await workspace_of(domain)
        refused = await domain.call(
            "PATCH",
            path,
            ann,
            json={"name": "B"},
            headers={"If-Match": 'W/"1", "7-owner"'},
            expect=412,
        )
        assert refused["details"]["current_version"] == 1

    @pytest.mark.parametrize("header", ["one", '"1" "2"', '"1", 2', '*, "1"', ""])
    async def test_a_malformed_value_is_a_bad_request(self, domain: Domain, header: str) -> None:
        ann, path = await workspace_of(domain)
        refused = await domain.call(
            "PATCH", path, ann, json={"name": "B"}, headers={"If-Match": header}, expect=400
        )
        assert refused["code"] == "bad_request"

    async def test_a_list_of_two_versions_is_a_bad_request(self, domain: Domain) -> None:
        ann, path = await workspace_of(domain)
        refused = await domain.call(
            "PATCH", path, ann, json={"name": "B"}, headers={"If-Match": '"1", "2"'}, expect=400
        )
        assert "one version" in refused["detail"]

    async def test_the_documents_pattern_takes_star_and_no_value_answered_400(
        self, domain: Domain
    ) -> None:
        """The API document's If-Match pattern, which a client (or the fuzzer) builds its
        values from: ``*`` and the lone tags above fit it; no value the hub answers 400
        does (a list is described, not patterned: one of two versions is a 400)."""
        document = await (await domain.client.get("/api/v1/openapi.json")).json()
        for path in (
            "/api/v1/workspaces/{workspace_id}",
            "/api/v1/workspaces/{workspace_id}/resources/{resource_id}",
        ):
            (if_match,) = [
                p for p in document["paths"][path]["patch"]["parameters"] if p["name"] == "If-Match"
            ]
            pattern = re.compile(if_match["schema"]["pattern"])
            taken = ["*", '"1"', '"1-owner"', "1", "1-owner", 'W/"1"', "W/1"]
            assert [value for value in taken if not pattern.search(value)] == []
            bad = ["one", '"1" "2"', '"1", 2', '*, "1"', "", '"1", "2"', "**"]
            assert [value for value in bad if pattern.search(value)] == []
            assert "400" in if_match["description"]
            assert "`*`" in if_match["description"]

    async def test_a_resource_takes_the_same_lists(self, domain: Domain) -> None:
        ws, people = await domain.team()
        made = await domain.resource(ws["id"], people["member"])
        path = f"/workspaces/{ws['id']}/resources/{made['id']}"
        got = await domain.call(
            "GET", path, people["member"], headers={"If-None-Match": 'W/"1", "x"'}
        )
        assert got.status == 304
        changed = await domain.call(
            "PATCH",
            path,
            people["member"],
            json={"status": "done"},
            headers={"If-Match": '"0", "1"'},
            expect=200,
        )
        assert changed["version"] == 2
        await domain.call(
            "DELETE", path, people["member"], headers={"If-Match": 'W/"2"'}, expect=412
        )
