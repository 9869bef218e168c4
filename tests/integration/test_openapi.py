"""The OpenAPI document: generated from the catalog, valid 3.1, served with an offline
docs page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

import cli.main as cli
from hub.app import create_app
from hub.openapi import DocumentedRoute, build_document, errors_of
from hubbub.config import Settings
from hubbub.contracts.api import default_catalog
from hubbub.contracts.operations import Access


class TestDocument:
    def test_it_is_valid_openapi_3_1(self) -> None:
        document = build_document(default_catalog())
        validate(document)
        assert document["openapi"] == "3.1.0"

    def test_every_catalog_operation_with_a_route_is_in_it(self) -> None:
        document = build_document(default_catalog())
        found = {
            (method.upper(), path, op["operationId"])
            for path, item in document["paths"].items()
            for method, op in item.items()
        }
        expected = {
            (op.http.method, "/api/v1" + op.http.path, op.name)
            for op in default_catalog()
            if op.http is not None and op.access is not Access.INTERNAL
        }
        assert expected <= found

    def test_headers_and_errors_are_where_they_apply(self) -> None:
        document = build_document(default_catalog())
        patch = document["paths"]["/api/v1/workspaces/{workspace_id}/resources/{resource_id}"][
            "patch"
        ]
        headers = {p["name"] for p in patch["parameters"] if p["in"] == "header"}
        assert headers == {"If-Match", "Idempotency-Key"}
        assert {"200", "404", "409", "412", "422"} <= set(patch["responses"])
        assert "ETag" in patch["responses"]["200"]["headers"]
        body = document["components"]["schemas"]["ResourceUpdateBody"]
        assert {"workspace_id", "resource_id", "expected_version"}.isdisjoint(body["properties"])

    def test_list_parameters_are_query_parameters(self) -> None:
        document = build_document(default_catalog())
        listing = document["paths"]["/api/v1/workspaces/{workspace_id}/resources"]["get"]
        query = {p["name"]: p for p in listing["parameters"] if p["in"] == "query"}
        assert {"q", "tag", "sort", "order", "limit", "cursor", "updated_since"} <= set(query)
        assert query["tag"]["explode"] is True

    def test_a_read_documents_413_too(self) -> None:
        """A worker answers too_large for any answer larger than NATS carries — a page
        of resources is read with GET, which has no body to be too large."""
        document = build_document(default_catalog())
        listing = document["paths"]["/api/v1/workspaces/{workspace_id}/resources"]["get"]
        assert "413" in listing["responses"]
        assert "too_large" in str(listing["responses"]["413"])

    def test_signed_in_operations_need_the_bearer_and_document_401(self) -> None:
        catalog = default_catalog()
        me = catalog["users.me"]
        assert "unauthorized" in {c.value for c in errors_of(me)}
        document = build_document(catalog)
        assert document["paths"]["/api/v1/users/me"]["get"]["security"] == [{"bearer": []}]

    def test_extra_routes_can_be_documented(self) -> None:
        route = DocumentedRoute(
            "POST",
            "/api/v1/channels/{channel}/publish",
            {"operationId": "channels.publish", "responses": {"202": {"description": "ok"}}},
        )
        document = build_document(default_catalog(), [route])
        assert "post" in document["paths"]["/api/v1/channels/{channel}/publish"]


class TestServed:
    async def test_the_document_is_served(self, hub_client: TestClient[Any, Any]) -> None:
        response = await hub_client.get("/api/v1/openapi.json")
        assert response.status == 200
        validate(await response.json())

    async def test_the_docs_page_and_its_assets_come_from_the_hub(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        page = await hub_client.get("/api/docs")
        html = await page.text()
        assert page.status == 200
        assert "http" not in html.replace("http-equiv", "")  # no CDN, nothing external
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "init.js", "favicon.png"):
            response = await hub_client.get(f"/api/docs/assets/{asset}")
            assert response.status == 200, asset
            assert len(await response.read()) > 50
        assert (await hub_client.get("/api/docs/assets/../../etc/passwd")).status == 404

    async def test_hubbub_openapi_prints_the_served_document(
        self,
        settings: Settings,
        aiohttp_client: Any,
        capsysbinary: pytest.CaptureFixture[bytes],
    ) -> None:
        """The frontend's types are generated from `hubbub openapi`; it must be what a
        running hub serves, or the contract check in CI would compare the wrong thing."""
        client = await aiohttp_client(create_app(settings))  # the production catalog
        served = await (await client.get("/api/v1/openapi.json")).json()
        assert cli.main(["openapi"]) == 0
        assert orjson.loads(capsysbinary.readouterr().out) == served


class TestTheCommand:
    def test_output_writes_the_printed_document(
        self, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
    ) -> None:
        target = tmp_path / "openapi.json"
        assert cli.main(["openapi", "--output", str(target)]) == 0
        assert cli.main(["openapi"]) == 0
        assert target.read_bytes() == capsysbinary.readouterr().out

    def test_an_unwritable_output_is_a_clear_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert cli.main(["openapi", "--output", str(tmp_path / "missing" / "x.json")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("hubbub: cannot write ")
        assert "No such file or directory" in err
        assert "Traceback" not in err
