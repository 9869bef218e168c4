"""``GET /api/v1/openapi.json`` and the docs page at ``/api/docs``, which works offline.

The page is Swagger UI, whose files come from the ``swagger-ui-py`` wheel (pinned in
``requirements.lock``) and are served by the hub itself: no CDN, no network. The page
and its start-up script are ours; only the renderer's bundle and stylesheet are taken
from the package. The document is generated once, at start-up, from the app's catalog
and documented routes (``hub/openapi.py``): document extra routes before that.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
from aiohttp import web

from hub.openapi import DOCUMENTED_ROUTES, build_document
from hub.state import CATALOG

OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/docs"
OPENAPI_BYTES = web.AppKey("openapi_bytes", bytes)
ASSETS = {  # served name → (file in swagger_ui/static, content type)
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": ("swagger-ui.css", "text/css"),
    "favicon.png": ("favicon-32x32.png", "image/png"),
}
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Hubbub API</title>
  <link rel="icon" type="image/png" href="{base}/assets/favicon.png">
  <link rel="stylesheet" href="{base}/assets/swagger-ui.css">
</head>
<body>
  <div id="docs"></div>
  <script src="{base}/assets/swagger-ui-bundle.js"></script>
  <script src="{base}/assets/init.js"></script>
</body>
</html>
"""

INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "OPENAPI_PATH",
    dom_id: "#docs",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    persistAuthorization: false
  });
});
""".replace("OPENAPI_PATH", OPENAPI_PATH)


def swagger_ui_static() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


async def build_on_startup(app: web.Application) -> None:
    document = build_document(app[CATALOG], app.get(DOCUMENTED_ROUTES, []))
    app[OPENAPI_BYTES] = orjson.dumps(document)


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_BYTES], content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    response = web.Response(text=PAGE.format(base=DOCS_PATH), content_type="text/html")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "init.js":
        response: web.StreamResponse = web.Response(text=INIT, content_type="text/javascript")
    elif name in ASSETS:
        file, content_type = ASSETS[name]
        response = web.FileResponse(swagger_ui_static() / file)
        response.content_type = content_type
    else:
        raise web.HTTPNotFound()
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


def add_docs_routes(app: web.Application) -> None:
    app.on_startup.append(build_on_startup)
    app.router.add_get(OPENAPI_PATH, openapi_json)
    app.router.add_get(DOCS_PATH, docs_page)
    app.router.add_get(DOCS_PATH + "/assets/{name}", docs_asset)
