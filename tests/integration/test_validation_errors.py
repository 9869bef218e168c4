"""Validation errors of optional PATCH fields over REST: one error per field, at the
field's own location, naming no validator of ours (a PATCH field is ``X | None``, and
pydantic reports a failure for each member of the union)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.workspaces import Domain


@pytest.fixture
def domain(hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> Domain:
    return Domain(hub_client, db)


def assert_one_error_at(body: dict[str, Any], field: str) -> None:
    assert body["code"] == "validation_failed"
    errors = body["details"]["errors"]
    assert [e["loc"] for e in errors] == [[field]], errors
    assert body["detail"].startswith(f"{field}: ")
    assert "function-after" not in str(body)
    assert "Input should be None" not in str(body)


async def refused_resource_patch(domain: Domain, patch: dict[str, Any]) -> dict[str, Any]:
    """A new resource's PATCH with ``patch``, refused 422: the problem's body."""
    owner = await domain.person("owner")
    ws = await domain.workspace(owner)
    res = await domain.resource(ws["id"], owner)
    body: dict[str, Any] = await domain.call(
        "PATCH", f"/workspaces/{ws['id']}/resources/{res['id']}", owner, json=patch, expect=422
    )
    return body


class TestOptionalPatchFields:
    async def test_a_resource_title_that_is_refused(self, domain: Domain) -> None:
        body = await refused_resource_patch(domain, {"title": "a\u200bb"})
        assert_one_error_at(body, "title")
        assert "U+200B" in body["details"]["errors"][0]["msg"]

    async def test_a_resource_status_of_the_wrong_type(self, domain: Domain) -> None:
        body = await refused_resource_patch(domain, {"status": 5})
        assert_one_error_at(body, "status")

    async def test_resource_tags_that_are_refused_are_named_by_position(
        self, domain: Domain
    ) -> None:
        body = await refused_resource_patch(domain, {"tags": ["fine", "not fine"]})
        assert [e["loc"] for e in body["details"]["errors"]] == [["tags", "1"]]

    async def test_a_workspace_name_that_is_refused(self, domain: Domain) -> None:
        owner = await domain.person("owner")
        ws = await domain.workspace(owner)
        body = await domain.call(
            "PATCH", f"/workspaces/{ws['id']}", owner, json={"name": "a\u200bb"}, expect=422
        )
        assert_one_error_at(body, "name")

    async def test_a_display_name_that_is_refused(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        body = await domain.call(
            "PATCH", "/users/me", ann, json={"display_name": "a\u200bb"}, expect=422
        )
        assert_one_error_at(body, "display_name")

    async def test_null_is_still_refused_at_the_field(self, domain: Domain) -> None:
        owner = await domain.person("owner")
        ws = await domain.workspace(owner)
        body = await domain.call(
            "PATCH", f"/workspaces/{ws['id']}", owner, json={"name": None}, expect=422
        )
        assert_one_error_at(body, "name")
