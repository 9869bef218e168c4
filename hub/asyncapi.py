"""``GET /api/v1/asyncapi.json``: the AsyncAPI 3.0 document of the WebSocket protocol and
the channels' events (``hubbub/contracts/asyncapi.py``), built once at start-up from the
app's catalog, like the OpenAPI document beside it."""

from __future__ import annotations

import orjson
from aiohttp import web

from hub.state import CATALOG
from hubbub.contracts.asyncapi import ASYNCAPI_PATH, build_document

ASYNCAPI_BYTES = web.AppKey("asyncapi_bytes", bytes)


async def _build(app: web.Application) -> None:
    app[ASYNCAPI_BYTES] = orjson.dumps(build_document(app[CATALOG]))


async def _serve(request: web.Request) -> web.Response:
    return web.Response(body=request.app[ASYNCAPI_BYTES], content_type="application/json")


def add_asyncapi_route(app: web.Application) -> None:
    app.on_startup.append(_build)
    app.router.add_get(ASYNCAPI_PATH, _serve)
