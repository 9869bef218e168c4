"""The hub serves the built frontend on its own origin, by the export's path rules."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.app import create_app
from hubbub.config import Settings
from tests.support import ops
from tests.support.raw_http import raw_request

# The hub does not decode brotli (no brotli package in the venv): a stand-in body shows
# that the .br file is the one sent, byte for byte.
BROTLI_STANDIN = b"\x8b\x03\x80precompressed-by-the-build\x03"


@pytest.fixture
async def site(
    settings: Settings, tmp_path: Path, aiohttp_client: Any, nc: Any
) -> TestClient[Any, Any]:
    out = tmp_path / "out"
    (out / "workspaces").mkdir(parents=True)
    (out / "_next" / "static" / "chunks").mkdir(parents=True)
    (out / "index.html").write_text("<html>home</html>")
    (out / "workspaces" / "index.html").write_text("<html>workspaces</html>")
    (out / "404.html").write_text("<html>not here</html>")
    (out / "_next" / "static" / "chunks" / "app.js").write_text("console.log(1)")
    bundle = "console.log('hubbub');\n" * 200
    (out / "_next" / "static" / "chunks" / "big.js").write_text(bundle)
    (out / "_next" / "static" / "chunks" / "big.js.gz").write_bytes(gzip.compress(bundle.encode()))
    (out / "_next" / "static" / "chunks" / "big.js.br").write_bytes(BROTLI_STANDIN)
    (tmp_path / "secret.txt").write_text("outside")
    app = create_app(settings.model_copy(update={"frontend_dir": out}), ops.catalog_with_tests())
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


class TestStaticSite:
    async def test_the_root_and_a_folder_serve_their_index(
        self, site: TestClient[Any, Any]
    ) -> None:
        home, page = await site.get("/"), await site.get("/workspaces/")
        assert (home.status, await home.text()) == (200, "<html>home</html>")
        assert (page.status, await page.text()) == (200, "<html>workspaces</html>")
        assert page.content_type == "text/html"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

    async def test_a_folder_without_its_slash_redirects_keeping_the_query(
        self, site: TestClient[Any, Any]
    ) -> None:
        response = await site.get("/workspaces?id=7", allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (308, "/workspaces/?id=7")

    async def test_the_redirect_keeps_the_query_byte_for_byte(
        self, site: TestClient[Any, Any]
    ) -> None:
        """An escaped ``#`` stays escaped: decoded, it would cut the query short."""
        response = await raw_request(site.server.port, "GET", b"/workspaces?b=%23frag&c=%2F")
        assert (response.status, response.headers["Location"]) == (
            308,
            "/workspaces/?b=%23frag&c=%2F",
        )

    @pytest.mark.parametrize(
        "target", [b"//evil.com%2f%2e%2e", b"//evil.com/%2e%2e%2f.", b"//evil.com%2fworkspaces"]
    )
    async def test_a_redirect_never_leaves_the_site(
        self, site: TestClient[Any, Any], target: bytes
    ) -> None:
        """A Location starting ``//`` names another host (an open redirect): the redirect
        names the folder the path resolved to, on this site."""
        response = await raw_request(site.server.port, "GET", target)
        location = response.headers.get("Location", "")
        assert not location.startswith("//"), location
        assert response.status in (308, 404)
        if response.status == 308:
            assert location in ("/", "/workspaces/")

    async def test_a_name_too_long_for_the_file_system_is_the_404_page(
        self, site: TestClient[Any, Any]
    ) -> None:
        response = await site.get("/" + "a" * 300)
        assert (response.status, await response.text()) == (404, "<html>not here</html>")

    async def test_hashed_assets_are_cached_for_a_year(self, site: TestClient[Any, Any]) -> None:
        response = await site.get("/_next/static/chunks/app.js")
        assert response.status == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"

    async def test_an_unknown_page_is_the_404_page_with_status_404(
        self, site: TestClient[Any, Any]
    ) -> None:
        response = await site.get("/nowhere/")
        assert (response.status, await response.text()) == (404, "<html>not here</html>")

    async def test_paths_cannot_escape_the_site(self, site: TestClient[Any, Any]) -> None:
        response = await site.get("/..%2Fsecret.txt")
        assert "outside" not in await response.text()
        assert response.status == 404

    async def test_a_nul_byte_in_the_path_is_not_found(self, site: TestClient[Any, Any]) -> None:
        """A %00 is decoded into the path; it names no file (it used to raise: 500)."""
        response = await site.get("/index.html%00.txt")
        assert response.status == 404

    async def test_api_paths_keep_their_problem_details(self, site: TestClient[Any, Any]) -> None:
        response = await site.get("/api/v1/nope")
        assert (response.status, response.content_type) == (404, "application/problem+json")
        assert (await site.get("/api/v1/health")).status == 200


class TestMethodNotAllowedBesideTheSite:
    """The site answers GET on every other path; an API path's 405 still lists exactly
    the methods of that path (schemathesis: "Allow header mismatch")."""

    async def test_a_wrong_method_on_a_post_only_path_allows_only_post(
        self, site: TestClient[Any, Any]
    ) -> None:
        for method in ("DELETE", "PUT", "OPTIONS"):
            response = await site.request(method, "/api/v1/auth/login")
            body = await response.json()
            assert (response.status, body["code"]) == (405, "method_not_allowed"), method
            assert response.headers["Allow"] == "POST", method

    async def test_get_on_a_post_only_api_path_is_405_not_the_sites_404(
        self, site: TestClient[Any, Any]
    ) -> None:
        response = await site.get("/api/v1/auth/login")
        assert (response.status, response.headers["Allow"]) == (405, "POST")
        assert (await response.json())["details"]["allow"] == "POST"

    async def test_a_path_with_parameters_lists_its_own_methods(
        self, site: TestClient[Any, Any]
    ) -> None:
        workspace = "/api/v1/workspaces/0b6a3cda-8d4b-4bd5-8f46-6a1d3b1f5a10"
        response = await site.request("PUT", workspace)
        assert (response.status, response.headers["Allow"]) == (405, "DELETE, GET, HEAD, PATCH")
        members = await site.request("POST", workspace + "/members/someone")
        assert (members.status, members.headers["Allow"]) == (405, "DELETE, PATCH")

    async def test_an_unknown_api_path_is_still_404(self, site: TestClient[Any, Any]) -> None:
        response = await site.get("/api/v1/nowhere")
        assert (response.status, (await response.json())["code"]) == (404, "not_found")
        assert "Allow" not in response.headers


class TestPrecompressedFiles:
    """The build's .br / .gz copies go to clients that accept them, with the headers that say so."""

    async def test_brotli_first_when_accepted(self, site: TestClient[Any, Any]) -> None:
        response = await site.get(
            "/_next/static/chunks/big.js",
            headers={"Accept-Encoding": "gzip, deflate, br"},
            auto_decompress=False,
        )
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "br"
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.content_type == "text/javascript"
        assert await response.read() == BROTLI_STANDIN

    async def test_gzip_when_brotli_is_not_accepted(self, site: TestClient[Any, Any]) -> None:
        response = await site.get(
            "/_next/static/chunks/big.js",
            headers={"Accept-Encoding": "gzip"},
            auto_decompress=False,
        )
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Vary"] == "Accept-Encoding"
        body = await response.read()
        assert gzip.decompress(body) == b"console.log('hubbub');\n" * 200
        assert len(body) < 200 * 23 // 10

    async def test_the_plain_file_otherwise_still_varying_by_encoding(
        self, site: TestClient[Any, Any]
    ) -> None:
        response = await site.get(
            "/_next/static/chunks/big.js", headers={"Accept-Encoding": "identity"}
        )
        assert "Content-Encoding" not in response.headers
        assert response.headers["Vary"] == "Accept-Encoding"
        assert await response.text() == "console.log('hubbub');\n" * 200

    async def test_a_file_without_copies_is_sent_as_it_is(self, site: TestClient[Any, Any]) -> None:
        response = await site.get(
            "/_next/static/chunks/app.js", headers={"Accept-Encoding": "gzip, br"}
        )
        assert "Content-Encoding" not in response.headers
        assert "Vary" not in response.headers
        assert await response.text() == "console.log(1)"
